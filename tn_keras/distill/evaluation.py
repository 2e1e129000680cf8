"""How good is a distilled level? Two measures.

1. Reference classification (the paper's use of distilled images): a test image gets the class
   of the reference whose embedding is most similar by cosine,
   ``argmax_r <f(t)|f(r)> / (|f(t)| |f(r)|)`` ("nearest"), or of the class whose mean reference
   embedding is most similar ("class_mean"). ``f`` is the distilling network's embedding.

2. Train from scratch (the dataset-distillation literature's protocol, e.g. DC/DM): a fixed
   evaluator network, freshly initialised, is trained on the level only and tested on the real
   test split; repeated for several seeds (mean, std), and compared with the same number of
   *random real* images per class.

   Evaluator (PROJECT choice, fixed so that numbers are comparable across levels and runs):
   ``Rescaling(1/255) -> [Conv3x3(32) -> ReLU -> MaxPool2] -> [Conv3x3(64) -> ReLU ->
   MaxPool2] -> Flatten -> Dropout(0.25) -> Dense(classes)``, Adam(1e-3), batch
   ``min(256, N)``, a fixed number of optimisation *steps* (default 300) whatever the level's
   size, so small levels are not under-trained in epochs; random +-2 px translations as
   augmentation. This is smaller than the literature's ConvNet-3 (128 channels, instance norm):
   the machine has 2 CPU cores; numbers are therefore not directly comparable to published
   ones.
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

EVALUATOR = ("Rescaling(1/255) > Conv3x3(32) ReLU MaxPool2 > Conv3x3(64) ReLU MaxPool2 > "
             "Flatten > Dropout(0.25) > Dense(classes); Adam 1e-3; batch min(256,N); "
             "+-2 px random translation")


def _unit(e: np.ndarray) -> np.ndarray:
    e = e.reshape(len(e), -1).astype(np.float64)
    return e / np.maximum(np.linalg.norm(e, axis=1, keepdims=True), 1e-12)


def reference_classification(model, ref_x, ref_y, test_x, test_y,
                             embedding_layer: str = "embedding", batch_size: int = 512) -> dict:
    """Accuracy of classifying ``test_x`` by cosine similarity to the references' embeddings.

    Returns ``{"nearest": acc, "class_mean": acc, "references": N}``.
    """
    from tn_keras.distill.algorithm import Synthesiser

    synth = Synthesiser(model, embedding_layer)
    ref = _unit(synth.embed(np.asarray(ref_x), batch_size))
    ref_y = np.asarray(ref_y).astype(np.int64)
    classes = np.unique(ref_y)
    means = _unit(np.stack([ref[ref_y == c].mean(axis=0) for c in classes]))
    test_y = np.asarray(test_y).astype(np.int64)
    correct_nearest = correct_mean = 0
    for s in range(0, len(test_x), batch_size):
        t = _unit(synth.embed(np.asarray(test_x[s:s + batch_size]), batch_size))
        labels = test_y[s:s + batch_size]
        correct_nearest += int(np.sum(ref_y[np.argmax(t @ ref.T, axis=1)] == labels))
        correct_mean += int(np.sum(classes[np.argmax(t @ means.T, axis=1)] == labels))
    n = len(test_x)
    return {"nearest": correct_nearest / n, "class_mean": correct_mean / n,
            "references": int(len(ref_y))}


def build_evaluator(input_shape, num_classes: int, seed: int):
    """The fixed evaluator network (see the module docstring), freshly initialised."""
    import keras
    from keras import layers

    keras.utils.set_random_seed(seed)
    inputs = keras.Input(input_shape)
    x = layers.Rescaling(1.0 / 255.0)(inputs)
    x = layers.Conv2D(32, 3, padding="same", activation="relu")(x)
    x = layers.MaxPooling2D(2)(x)
    x = layers.Conv2D(64, 3, padding="same", activation="relu")(x)
    x = layers.MaxPooling2D(2)(x)
    x = layers.Flatten()(x)
    x = layers.Dropout(0.25)(x)
    outputs = layers.Dense(num_classes)(x)
    return keras.Model(inputs, outputs, name="distill_evaluator")


def _translate(images, pixels=2):
    import tensorflow as tf

    shape = tf.shape(images)
    padded = tf.pad(images, [[0, 0], [pixels, pixels], [pixels, pixels], [0, 0]])
    out = tf.image.random_crop(padded, shape)  # one shift per batch: cheap, enough here
    return out


def train_from_scratch(x, y, test_x, test_y, num_classes: Optional[int] = None,
                       seeds: Sequence[int] = (0, 1, 2), steps: int = 300,
                       learning_rate: float = 1e-3, augment: bool = True) -> dict:
    """Train the evaluator on ``(x, y)`` for ``steps`` steps per seed; test accuracy stats.

    Returns ``{"mean", "std", "accuracies", "steps", "images", "evaluator"}``.
    """
    import keras
    import tensorflow as tf

    x = np.asarray(x, dtype=np.float32)
    y = np.asarray(y).astype(np.int64)
    num_classes = int(num_classes or (max(int(y.max()), int(np.max(test_y))) + 1))
    batch = int(min(256, len(x)))
    accs = []
    for seed in seeds:
        model = build_evaluator(x.shape[1:], num_classes, seed)
        model.compile(optimizer=keras.optimizers.Adam(learning_rate),
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                      metrics=["accuracy"])
        ds = tf.data.Dataset.from_tensor_slices((x, y)).repeat()
        ds = ds.shuffle(min(len(x), 10000), seed=seed).batch(batch)
        if augment:
            ds = ds.map(lambda a, b: (_translate(a), b))
        ds = ds.take(steps).prefetch(2)
        model.fit(ds, epochs=1, verbose=0)
        _, acc = model.evaluate(np.asarray(test_x, np.float32), np.asarray(test_y),
                                batch_size=1000, verbose=0)
        accs.append(float(acc))
    return {"mean": float(np.mean(accs)), "std": float(np.std(accs)), "accuracies": accs,
            "steps": int(steps), "images": int(len(x)), "evaluator": EVALUATOR}


def random_real_subset(x, y, per_class: int, seed: int):
    """``per_class`` random real images of every class (the baseline for a level)."""
    rng = np.random.default_rng([seed, 12345])
    idx = np.concatenate([rng.choice(np.flatnonzero(y == c), per_class, replace=False)
                          for c in np.unique(y)])
    return x[idx], np.asarray(y)[idx]
