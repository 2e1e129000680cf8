"""Accuracy of a model on the real test split(s) of its dataset."""
import numpy as np

from tn_keras import datasets


def evaluation_splits(dataset):
    """The splits every result is reported on: CIFAR-10 also on its 1,000 lossless images."""
    return ("test", "test_lossless") if "test_lossless" in datasets.info(dataset).splits else (
        "test",)


def evaluate(model, dataset, splits=None, data_dir=None, batch_size=256, max_examples=None):
    """``{split: {"accuracy": a, "examples": n}}`` from the argmax of ``model.predict``.

    Args:
        model: a Keras model taking raw images (zoo models carry their preprocessing).
        dataset: a `tn_keras.datasets` name.
        splits: default `evaluation_splits(dataset)`.
        max_examples: evaluate the first ``max_examples`` of each split only (smoke tests).
    """
    results = {}
    for split in splits or evaluation_splits(dataset):
        x, y = datasets.load(dataset, split, data_dir=data_dir)
        if max_examples is not None:
            x, y = x[:max_examples], y[:max_examples]
        scores = model.predict(x.astype("float32"), batch_size=batch_size, verbose=0)
        predicted = np.argmax(scores, axis=-1)
        results[split] = {
            "accuracy": float(np.mean(predicted == y)),
            "examples": int(len(y)),
        }
    return results
