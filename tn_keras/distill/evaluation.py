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
   (default 300) whatever the level's size, a random +-2 px translation per batch.

   ``"convnet3"`` (the literature's, to compare with published figures): ConvNet-3 as in DC,
   DSA and DM (Zhao et al. 2021, 2023): three ``Conv3x3(128) -> InstanceNorm -> ReLU ->
   AvgPool2`` blocks and a linear classifier; SGD (momentum 0.9, weight decay 5e-4), learning
   rate 0.01 divided by 10 halfway, batch 256, 300 epochs (DC's evaluation length; DM trains
   1,000); DSA-style augmentation: every batch gets *one* of crop (translate up to 1/8 of the
   side), scale (up to 20 %), rotate (up to 15 degrees), cutout (a square of half the side),
   colour (brightness, contrast, saturation for RGB) and, for RGB only, horizontal flip, with
   parameters drawn per image. Slower (docs/distillation.md has timings).

Both run on every Keras backend: the augmentation is a Keras layer in front of the evaluator
(active in training only) and the batches come from a seeded `keras.utils.PyDataset`.
"""
from __future__ import annotations

import dataclasses
import math
import numbers
from typing import Callable, Optional, Sequence

import keras
import numpy as np
from keras import layers
from keras import ops

from tn_keras.distill.config import EVALUATORS
from tn_keras.distill.config import MAX_STEPS
from tn_keras.distill.config import PIXEL_MAX
from tn_keras.distill.embedding_matching import embed
from tn_keras.distill.embedding_matching import embedding_network
from tn_keras.utils.options import deprecated_aliases as _deprecated_aliases
from tn_keras.utils.options import with_keywords

EVALUATOR = ("Rescaling(1/255) > Conv3x3(32) ReLU MaxPool2 > Conv3x3(64) ReLU MaxPool2 > "
             "Flatten > Dropout(0.25) > Dense(classes); Adam 1e-3; batch min(256,N); "
             "+-2 px random translation")
CONVNET3 = ("Rescaling(1/255) > 3 x [Conv3x3(128) InstanceNorm ReLU AvgPool2] > Flatten > "
            "Dense(classes); SGD 0.01 momentum 0.9 weight decay 5e-4, /10 halfway; batch 256; "
            "300 epochs; one DSA-style augmentation per batch (crop, scale, rotate, cutout, "
            "colour, flip for RGB)")
#: Evaluator name (`tn_keras.distill.config.EVALUATORS`) -> its description (recorded with
#: every result).
PROTOCOLS = dict(zip(EVALUATORS, (EVALUATOR, CONVNET3)))
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
    network = embedding_network(model, embedding_layer)
    ref = _unit(embed(network, np.asarray(ref_x), batch_size))
    ref_y = np.asarray(ref_y).astype(np.int64)
    classes = np.unique(ref_y)
    means = _unit(np.stack([ref[ref_y == c].mean(axis=0) for c in classes]))
    test_y = np.asarray(test_y).astype(np.int64)
    correct_nearest = correct_mean = 0
    for s in range(0, len(test_x), batch_size):
        t = _unit(embed(network, np.asarray(test_x[s:s + batch_size]), batch_size))
        labels = test_y[s:s + batch_size]
        correct_nearest += int(np.sum(ref_y[np.argmax(t @ ref.T, axis=1)] == labels))
        correct_mean += int(np.sum(classes[np.argmax(t @ means.T, axis=1)] == labels))
    n = len(test_x)
    return {"nearest": correct_nearest / n, "class_mean": correct_mean / n,
            "references": int(len(ref_y))}


def build_evaluator(input_shape, num_classes: int, seed: int, evaluator: str = "small"):
    """A freshly initialised evaluator network (see the module docstring); logits out."""
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


class RandomShift(layers.Layer):
    """Training only: the batch padded with ``pixels`` zeros per side and cropped back at one
    random offset (the same shift for every image of the batch: cheap, enough here)."""

    def __init__(self, pixels: int = 2, seed: Optional[int] = None, **kwargs):
        super().__init__(**kwargs)
        self.pixels = int(pixels)
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, images, training=None):
        if not training:
            return images
        p = self.pixels
        padded = ops.pad(images, [[0, 0], [p, p], [p, p], [0, 0]])
        offset = keras.random.randint((2,), 0, 2 * p + 1, seed=self.seed_generator)
        start = ops.concatenate([ops.zeros((1,), "int32"), ops.cast(offset, "int32"),
                                 ops.zeros((1,), "int32")])
        return ops.slice(padded, start, ops.shape(images))

    def get_config(self):
        return dict(super().get_config(), pixels=self.pixels)


class DSAAugmentation(layers.Layer):
    """The ``convnet3`` protocol's augmentation of a float batch (0..255), training only.

    Like DSA (Zhao & Bilen 2021, ``aug_mode="S"``), each batch gets one transformation chosen
    at random, with its parameters drawn per image: crop (translate up to 1/8 of the side),
    scale (up to 20 %), rotate (up to 15 degrees), cutout (a square of half the side set to
    zero), colour (brightness shift up to a quarter of the range, saturation for RGB, contrast)
    and, for RGB, a horizontal flip. Spatial transforms fill with the nearest edge pixel.
    """

    def __init__(self, channels: int, seed: Optional[int] = None, **kwargs):
        super().__init__(**kwargs)
        self.channels = int(channels)
        spatial = dict(fill_mode="nearest", seed=seed)
        self.crop = layers.RandomTranslation(0.125, 0.125, **spatial)
        self.scale = layers.RandomZoom(0.2, 0.2, **spatial)
        self.rotate = layers.RandomRotation(15.0 / 360.0, **spatial)
        self.seed_generator = keras.random.SeedGenerator(seed)

    def build(self, input_shape):
        for layer in (self.crop, self.scale, self.rotate):
            layer.build(input_shape)

    def _uniform(self, images, low, high):
        return keras.random.uniform((ops.shape(images)[0], 1, 1, 1), low, high,
                                    seed=self.seed_generator)

    def _cutout(self, images):
        height, width = ops.shape(images)[1], ops.shape(images)[2]
        cy = self._uniform(images, 0.0, float(height))
        cx = self._uniform(images, 0.0, float(width))
        rows = ops.reshape(ops.arange(height, dtype="float32"), (1, -1, 1, 1))
        cols = ops.reshape(ops.arange(width, dtype="float32"), (1, 1, -1, 1))
        inside = ops.logical_and(ops.abs(rows - cy) < height / 4.0,
                                 ops.abs(cols - cx) < width / 4.0)
        return ops.where(inside, 0.0, images)

    def _colour(self, images):
        # Brightness, then saturation (RGB) and contrast: per-image factors around the
        # image's own grey / mean.
        out = images + self._uniform(images, -0.25, 0.25) * PIXEL_MAX
        if self.channels == 3:
            grey = ops.mean(out, axis=-1, keepdims=True)
            out = grey + (out - grey) * self._uniform(images, 0.0, 2.0)
        mean = ops.mean(out, axis=(1, 2, 3), keepdims=True)
        out = mean + (out - mean) * self._uniform(images, 0.5, 1.5)
        return ops.clip(out, 0.0, PIXEL_MAX)

    def _flip(self, images):
        return ops.where(self._uniform(images, 0.0, 1.0) < 0.5, ops.flip(images, axis=2),
                         images)

    def call(self, images, training=None):
        if not training:
            return images
        # Every branch is computed and one is kept: a branch-free graph, the same on every
        # backend (cheap next to the evaluator's training step).
        outs = [self.crop(images, training=True), self.scale(images, training=True),
                self.rotate(images, training=True), self._cutout(images), self._colour(images)]
        if self.channels == 3:
            outs.append(self._flip(images))
        choice = keras.random.randint((), 0, len(outs), seed=self.seed_generator)
        return ops.take(ops.stack(outs), choice, axis=0)

    def get_config(self):
        return dict(super().get_config(), channels=self.channels)


def dsa_augmentation(channels: int, seed: int) -> DSAAugmentation:
    """The ``convnet3`` protocol's augmentation layer (call it with ``training=True``)."""
    return DSAAugmentation(channels, seed)


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


class ShuffledBatches(keras.utils.PyDataset):
    """``steps`` batches of ``batch`` examples from successive seeded permutations of the data
    (an endless shuffled stream cut into batches, as the protocols train by steps)."""

    def __init__(self, x, y, batch: int, steps: int, seed: int, **kwargs):
        super().__init__(**kwargs)
        self.x, self.y, self.batch, self.steps = x, y, int(batch), int(steps)
        rng = np.random.default_rng([seed, 54321])
        epochs = -(-self.batch * self.steps // len(x))
        self.order = np.concatenate([rng.permutation(len(x)) for _ in range(epochs)])

    def __len__(self):
        return self.steps

    def __getitem__(self, index):
        idx = self.order[index * self.batch:(index + 1) * self.batch]
        return self.x[idx], self.y[idx]


@dataclasses.dataclass(frozen=True)
class ScratchTrainingConfig:
    """How `train_from_scratch` trains a fresh network (the module docstring has the two
    protocols); every field is also a keyword argument of it. Checked when made (a
    ValueError naming the field); no `resolved`: the defaults that depend on the training set's
    size (``steps`` of ``"convnet3"``) are `training_length`'s, worked out when it trains.

    Attributes:
        evaluator: ``"small"`` (default ``steps=300``, Adam ``1e-3``) or ``"convnet3"``
            (default: 300 epochs of batch 256, SGD ``0.01``).
        steps, learning_rate: override the evaluator's (`training_length`).
        augment: the protocol's augmentation layer in front of the network (training only).
        builder: ``(input_shape, num_classes, seed) -> logits model``, another network
            trained under the ``evaluator``'s protocol (optimiser, length, augmentation)
            instead of its own.
    """

    evaluator: str = "small"
    steps: Optional[int] = None
    learning_rate: Optional[float] = None
    augment: bool = True
    builder: Optional[Callable] = None

    def __post_init__(self):
        _check_evaluator(self.evaluator)
        steps = self.steps
        if steps is not None and (isinstance(steps, bool) or not isinstance(
                steps, numbers.Integral) or not 1 <= steps <= MAX_STEPS):
            raise ValueError(f"steps={steps!r}: expected None or a whole number of steps from 1 "
                             f"to {MAX_STEPS:,}.")
        rate = self.learning_rate
        if rate is not None and (isinstance(rate, bool) or not isinstance(rate, numbers.Real)
                                 or not 0 < rate < math.inf):
            raise ValueError(f"learning_rate={rate!r}: expected None or a positive number.")


def _protocol_model(protocol, shape, num_classes, seed, steps, learning_rate):
    """The evaluator (or ``protocol.builder``'s network) behind the protocol's augmentation
    layer, compiled with the protocol's optimiser."""
    evaluator = protocol.evaluator
    network = (build_evaluator(shape, num_classes, seed, evaluator) if protocol.builder is None
               else protocol.builder(shape, num_classes, seed))
    if evaluator == "convnet3":
        schedule = keras.optimizers.schedules.PiecewiseConstantDecay(
            [steps // 2], [learning_rate, learning_rate / 10.0])
        optimizer = keras.optimizers.SGD(schedule, momentum=0.9, weight_decay=5e-4)
        augmentation = DSAAugmentation(shape[-1], seed)
    else:
        optimizer = keras.optimizers.Adam(learning_rate)
        augmentation = RandomShift(2, seed)
    inputs = keras.Input(shape)
    outputs = network(augmentation(inputs) if protocol.augment else inputs)
    model = keras.Model(inputs, outputs, name=f"{network.name}_training")
    model.compile(optimizer=optimizer,
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    return model


def train_from_scratch(x, y, test_x, test_y, protocol: Optional[ScratchTrainingConfig] = None, *,
                       num_classes: Optional[int] = None, seeds: Sequence[int] = (0, 1, 2),
                       test_subsets: Optional[dict] = None, **keywords) -> dict:
    """Train a fresh network on ``(x, y)`` per seed; its accuracy on ``(test_x, test_y)``.

    ``protocol`` (a `ScratchTrainingConfig`; its fields also as keywords, e.g. ``evaluator=
    "convnet3", steps=100``) says how. ``test_subsets`` (``{name: boolean mask over the test
    images}``) also reports the accuracy on each subset (e.g. CIFAR-10's lossless test images)
    from the same trained networks.

    Returns ``{"mean", "std", "accuracies", "steps", "images", "evaluator"}`` (and
    ``"subsets": {name: {"mean", "std", "accuracies"}}``).
    """
    protocol = with_keywords(protocol, ScratchTrainingConfig, keywords, "train_from_scratch")
    x, y, test_y, num_classes = _training_data(x, y, test_y, num_classes)
    batch, steps, learning_rate = training_length(protocol.evaluator, len(x), protocol.steps,
                                                  protocol.learning_rate)
    masks = {name: np.asarray(m, bool) for name, m in (test_subsets or {}).items()}
    correct = {None: []} | {name: [] for name in masks}
    for seed in seeds:
        model = _protocol_model(protocol, x.shape[1:], num_classes, seed, steps, learning_rate)
        model.fit(ShuffledBatches(x, y, batch, steps, seed), epochs=1, verbose=0)
        logits = model.predict(np.asarray(test_x, np.float32), batch_size=1000, verbose=0)
        hits = np.argmax(logits, axis=-1) == test_y
        correct[None].append(float(np.mean(hits)))
        for name, mask in masks.items():
            correct[name].append(float(np.mean(hits[mask])))
    result = accuracy_summary(correct[None])
    result.update(steps=int(steps), images=int(len(x)), evaluator=PROTOCOLS[protocol.evaluator])
    if masks:
        result["subsets"] = {name: accuracy_summary(correct[name]) for name in masks}
    return result


def _training_data(x, y, test_y, num_classes):
    """``(x float32, y int64, test_y int64, num_classes)``, the counts checked."""
    x = np.asarray(x, dtype=np.float32)
    y = np.asarray(y).astype(np.int64)
    if len(x) != len(y):
        raise ValueError(f"x has {len(x)} images but y has {len(y)} labels")
    test_y = np.asarray(test_y).astype(np.int64)
    num_classes = int(num_classes or (max(int(y.max()), int(np.max(test_y))) + 1))
    return x, y, test_y, num_classes


def accuracy_summary(accs) -> dict:
    """``{"mean", "std", "accuracies"}`` of per-seed accuracies."""
    return {"mean": float(np.mean(accs)), "std": float(np.std(accs)), "accuracies": accs}


def random_real_subset(x, y, per_class: int, seed: int):
    """``per_class`` random real images of every class (the baseline for a level)."""
    rng = np.random.default_rng([seed, 12345])
    idx = np.concatenate([rng.choice(np.flatnonzero(y == c), per_class, replace=False)
                          for c in np.unique(y)])
    return x[idx], np.asarray(y)[idx]


# The old names (renamed so that every config object ends in Config): importable from here as
# before, with a DeprecationWarning; each is the new class itself.
__getattr__ = _deprecated_aliases(__name__, {
    "ScratchProtocol": ("ScratchTrainingConfig", ScratchTrainingConfig),
})
