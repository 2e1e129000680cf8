"""Accuracy of a model on the real test split(s) of its dataset."""
import keras
import numpy as np

from tn_keras import datasets


def evaluation_splits(dataset):
    """The splits every result is reported on: CIFAR-10 also on its 1,000 lossless images."""
    return ("test", "test_lossless") if "test_lossless" in datasets.info(dataset).splits else (
        "test",)


def evaluate(model, dataset, splits=None, data_dir=None, batch_size=256, max_examples=None,
             reference=None, tta=False):
    """``{split: {"accuracy": a, "examples": n}}`` from the argmax of ``model.predict``.

    Args:
        model: a Keras model taking raw images (zoo models carry their preprocessing), or a
            `tn_keras.export.TFLiteModel`.
        dataset: a `tn_keras.datasets` name.
        splits: default `evaluation_splits(dataset)`.
        max_examples: evaluate the first ``max_examples`` of each split only (smoke tests).
        reference: another model (e.g. the Keras model an export came from): each split also
            reports ``top1_agreement``, the fraction of images on which both predict the same
            class.
        tta: classify by the mean of the model's outputs over `tta_views` (flips and
            one-pixel shifts) instead of the output on the image alone.
    """
    results = {}
    for split in splits or evaluation_splits(dataset):
        x, y = datasets.load(dataset, split, data_dir=data_dir)
        if max_examples is not None:
            x, y = x[:max_examples], y[:max_examples]
        x = x.astype("float32")
        predicted = (np.argmax(tta_predict(model, x, batch_size), axis=-1) if tta
                     else _top1(model, x, batch_size))
        results[split] = {
            "accuracy": float(np.mean(predicted == y)),
            "examples": int(len(y)),
        }
        if reference is not None:
            agreement = np.mean(predicted == _top1(reference, x, batch_size))
            results[split]["top1_agreement"] = float(agreement)
    return results


def _top1(model, x, batch_size):
    if isinstance(model, keras.Model):
        return np.argmax(model.predict(x, batch_size=batch_size, verbose=0), axis=-1)
    return np.argmax(model.predict(x, batch_size=batch_size), axis=-1)  # TFLiteModel


def tta_views(x):
    """``[(weight, view)]``: the image and its mirror (weight 1/4 each), and both of these
    shifted one pixel up-left and down-right in the reflection-padded image (1/8 each).

    airbench's level-2 test-time augmentation; the weights sum to 1.
    """
    x = np.asarray(x, np.float32)
    mirror = x[:, :, ::-1]
    padded = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)), mode="reflect")
    h, w = x.shape[1:3]
    up_left, down_right = padded[:, :h, :w], padded[:, 2:h + 2, 2:w + 2]
    views = [(0.25, x), (0.25, mirror)]
    for shifted in (up_left, down_right):
        views += [(0.125, shifted), (0.125, shifted[:, :, ::-1])]
    return views


def tta_predict(model, x, batch_size=256):
    """The weighted mean of ``model``'s outputs over `tta_views` of ``x``."""
    total = None
    for weight, view in tta_views(x):
        out = weight * np.asarray(model.predict(view, batch_size=batch_size, verbose=0),
                                  np.float64)
        total = out if total is None else total + out
    return total
