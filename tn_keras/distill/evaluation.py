"""How good is a distilled level? Two measures.

1. Reference classification (the paper's use of distilled images): a test image gets the class
   of the reference whose embedding is most similar by cosine,
   ``argmax_r <f(t)|f(r)> / (|f(t)| |f(r)|)`` ("nearest"), or of the class whose mean reference
   embedding is most similar ("class_mean"). ``f`` is the distilling network's embedding.

2. Train from scratch (the dataset-distillation literature's protocol, e.g. DC/DM): a fixed
   evaluator network, freshly initialised, is trained on the level only and tested on the real
   test split; repeated for several seeds (mean, std), and compared with the same number of
   *random real* images per class. Two evaluators (`PROTOCOLS`), fixed so that numbers are
   comparable across levels and runs:

   ``"small"`` (PROJECT, fast; the default): ``Rescaling(1/255) -> [Conv3x3(32) -> ReLU ->
   MaxPool2] -> [Conv3x3(64) -> ReLU -> MaxPool2] -> Flatten -> Dropout(0.25) ->
   Dense(classes)``, Adam(1e-3), batch ``min(256, N)``, a fixed number of optimisation *steps*
   (default 300) whatever the level's size, random +-2 px translations.

   ``"convnet3"`` (the literature's, to compare with published figures): ConvNet-3 as in DC,
   DSA and DM (Zhao et al. 2021, 2023): three ``Conv3x3(128) -> InstanceNorm -> ReLU ->
   AvgPool2`` blocks and a linear classifier; SGD (momentum 0.9, weight decay 5e-4), learning
   rate 0.01 divided by 10 halfway, batch 256, 300 epochs (DC's evaluation length; DM trains
   1,000); DSA-style augmentation: every batch gets *one* of crop (translate up to 1/8 of the
   side), scale (up to 20 %), rotate (up to 15 degrees), cutout (a square of half the side),
   colour (brightness, contrast, saturation for RGB) and, for RGB only, horizontal flip, with
   parameters drawn per image. Slower: about 2 minutes per run at 10 images per class on
   2 CPU cores.
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

EVALUATOR = ("Rescaling(1/255) > Conv3x3(32) ReLU MaxPool2 > Conv3x3(64) ReLU MaxPool2 > "
             "Flatten > Dropout(0.25) > Dense(classes); Adam 1e-3; batch min(256,N); "
             "+-2 px random translation")
CONVNET3 = ("Rescaling(1/255) > 3 x [Conv3x3(128) InstanceNorm ReLU AvgPool2] > Flatten > "
            "Dense(classes); SGD 0.01 momentum 0.9 weight decay 5e-4, /10 halfway; batch 256; "
            "300 epochs; one DSA-style augmentation per batch (crop, scale, rotate, cutout, "
            "colour, flip for RGB)")
#: Evaluator name -> its description (recorded with every result).
PROTOCOLS = {"small": EVALUATOR, "convnet3": CONVNET3}
CONVNET3_EPOCHS = 300
CONVNET3_BATCH = 256


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


def build_evaluator(input_shape, num_classes: int, seed: int, evaluator: str = "small"):
    """A freshly initialised evaluator network (see the module docstring); logits out."""
    import keras
    from keras import layers

    _check_evaluator(evaluator)
    keras.utils.set_random_seed(seed)
    inputs = keras.Input(input_shape)
    x = layers.Rescaling(1.0 / 255.0)(inputs)
    if evaluator == "convnet3":
        for _ in range(3):
            x = layers.Conv2D(128, 3, padding="same")(x)
            # GroupNormalization with one group per channel is instance normalisation.
            x = layers.GroupNormalization(groups=128, epsilon=1e-5)(x)
            x = layers.ReLU()(x)
            x = layers.AveragePooling2D(2)(x)
        x = layers.Flatten()(x)
        return keras.Model(inputs, layers.Dense(num_classes)(x), name="distill_convnet3")
    x = layers.Conv2D(32, 3, padding="same", activation="relu")(x)
    x = layers.MaxPooling2D(2)(x)
    x = layers.Conv2D(64, 3, padding="same", activation="relu")(x)
    x = layers.MaxPooling2D(2)(x)
    x = layers.Flatten()(x)
    x = layers.Dropout(0.25)(x)
    outputs = layers.Dense(num_classes)(x)
    return keras.Model(inputs, outputs, name="distill_evaluator")


def _check_evaluator(evaluator):
    if evaluator not in PROTOCOLS:
        raise ValueError(f"evaluator={evaluator!r}: expected one of {sorted(PROTOCOLS)}")


def _translate(images, pixels=2):
    import tensorflow as tf

    shape = tf.shape(images)
    padded = tf.pad(images, [[0, 0], [pixels, pixels], [pixels, pixels], [0, 0]])
    out = tf.image.random_crop(padded, shape)  # one shift per batch: cheap, enough here
    return out


def dsa_augmentation(channels: int, seed: int):
    """The ``convnet3`` protocol's augmentation: a function of a float batch (0..255).

    Like DSA (Zhao & Bilen 2021, ``aug_mode="S"``), each batch gets one transformation chosen
    at random, with its parameters drawn per image: crop, scale, rotate, cutout, colour and,
    for RGB, flip. Spatial transforms fill with the nearest edge pixel.
    """
    import tensorflow as tf
    from keras import layers

    spatial = dict(fill_mode="nearest", seed=seed)
    crop = layers.RandomTranslation(0.125, 0.125, **spatial)
    scale = layers.RandomZoom(0.2, 0.2, **spatial)
    rotate = layers.RandomRotation(15.0 / 360.0, **spatial)
    generator = tf.random.Generator.from_seed(seed)

    def cutout(images):
        # A square of half the side, centred anywhere in the image, set to zero.
        shape = tf.shape(images)
        n, h, w = shape[0], shape[1], shape[2]
        cy = generator.uniform([n, 1, 1, 1], 0, tf.cast(h, tf.float32))
        cx = generator.uniform([n, 1, 1, 1], 0, tf.cast(w, tf.float32))
        rows = tf.reshape(tf.range(tf.cast(h, tf.float32)), [1, -1, 1, 1])
        cols = tf.reshape(tf.range(tf.cast(w, tf.float32)), [1, 1, -1, 1])
        inside = ((tf.abs(rows - cy) < tf.cast(h, tf.float32) / 4.0)
                  & (tf.abs(cols - cx) < tf.cast(w, tf.float32) / 4.0))
        return tf.where(inside, 0.0, images)

    def colour(images):
        n = tf.shape(images)[0]
        # Brightness: a shift of up to a quarter of the pixel range; then saturation (RGB)
        # and contrast, each a per-image factor around the image's own grey / mean.
        out = images + generator.uniform([n, 1, 1, 1], -0.25, 0.25) * 255.0
        if channels == 3:
            grey = tf.reduce_mean(out, axis=-1, keepdims=True)
            out = grey + (out - grey) * generator.uniform([n, 1, 1, 1], 0.0, 2.0)
        mean = tf.reduce_mean(out, axis=[1, 2, 3], keepdims=True)
        out = mean + (out - mean) * generator.uniform([n, 1, 1, 1], 0.5, 1.5)
        return tf.clip_by_value(out, 0.0, 255.0)

    def flip(images):
        mirror = generator.uniform([tf.shape(images)[0], 1, 1, 1]) < 0.5
        return tf.where(mirror, tf.reverse(images, axis=[2]), images)

    def spatial_transform(layer):
        def transform(images):
            return layer(images, training=True)
        return transform

    branches = [spatial_transform(crop), spatial_transform(scale), spatial_transform(rotate),
                cutout, colour]
    if channels == 3:
        branches.append(flip)

    def augment(images):
        choice = generator.uniform([], 0, len(branches), dtype=tf.int32)
        out = tf.switch_case(choice, [lambda f=f: f(images) for f in branches])
        return tf.ensure_shape(out, images.shape)

    return augment


def training_length(evaluator: str, images: int, steps: Optional[int] = None,
                    learning_rate: Optional[float] = None):
    """``(batch, steps, learning_rate)`` of a protocol for ``images`` training images.

    ``"small"`` trains a fixed 300 steps; ``"convnet3"`` 300 epochs of batches of 256, so its
    step count grows with the level's size. Explicit ``steps`` / ``learning_rate`` win.
    """
    _check_evaluator(evaluator)
    if evaluator == "convnet3":
        batch = int(min(CONVNET3_BATCH, images))
        return batch, int(steps or CONVNET3_EPOCHS * -(-images // batch)), learning_rate or 0.01
    return int(min(256, images)), int(steps or 300), learning_rate or 1e-3


def train_from_scratch(x, y, test_x, test_y, num_classes: Optional[int] = None,
                       seeds: Sequence[int] = (0, 1, 2), steps: Optional[int] = None,
                       learning_rate: Optional[float] = None, augment: bool = True,
                       evaluator: str = "small") -> dict:
    """Train a fresh evaluator on ``(x, y)`` per seed; its accuracy on ``(test_x, test_y)``.

    ``evaluator`` is ``"small"`` (default ``steps=300``, Adam ``1e-3``) or ``"convnet3"``
    (default: 300 epochs of batch 256, SGD ``0.01``); see the module docstring.

    Returns ``{"mean", "std", "accuracies", "steps", "images", "evaluator"}``.
    """
    import keras
    import tensorflow as tf

    _check_evaluator(evaluator)
    x = np.asarray(x, dtype=np.float32)
    y = np.asarray(y).astype(np.int64)
    if len(x) != len(y):
        raise ValueError(f"x has {len(x)} images but y has {len(y)} labels")
    num_classes = int(num_classes or (max(int(y.max()), int(np.max(test_y))) + 1))
    batch, steps, learning_rate = training_length(evaluator, len(x), steps, learning_rate)
    accs = []
    for seed in seeds:
        model = build_evaluator(x.shape[1:], num_classes, seed, evaluator)
        if evaluator == "convnet3":
            schedule = keras.optimizers.schedules.PiecewiseConstantDecay(
                [steps // 2], [learning_rate, learning_rate / 10.0])
            optimizer = keras.optimizers.SGD(schedule, momentum=0.9, weight_decay=5e-4)
            transform = dsa_augmentation(x.shape[-1], seed)
        else:
            optimizer = keras.optimizers.Adam(learning_rate)
            transform = _translate
        model.compile(optimizer=optimizer,
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                      metrics=["accuracy"])
        ds = tf.data.Dataset.from_tensor_slices((x, y)).repeat()
        ds = ds.shuffle(min(len(x), 10000), seed=seed).batch(batch)
        if augment:
            ds = ds.map(lambda a, b: (transform(a), b))
        ds = ds.take(steps).prefetch(2)
        model.fit(ds, epochs=1, verbose=0)
        _, acc = model.evaluate(np.asarray(test_x, np.float32), np.asarray(test_y),
                                batch_size=1000, verbose=0)
        accs.append(float(acc))
    return {"mean": float(np.mean(accs)), "std": float(np.std(accs)), "accuracies": accs,
            "steps": int(steps), "images": int(len(x)), "evaluator": PROTOCOLS[evaluator]}


def random_real_subset(x, y, per_class: int, seed: int):
    """``per_class`` random real images of every class (the baseline for a level)."""
    rng = np.random.default_rng([seed, 12345])
    idx = np.concatenate([rng.choice(np.flatnonzero(y == c), per_class, replace=False)
                          for c in np.unique(y)])
    return x[idx], np.asarray(y)[idx]
