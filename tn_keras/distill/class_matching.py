"""Distribution matching at the published scale: the ``method="dm"`` level step.

Zhao & Bilen, "Dataset Condensation with Distribution Matching" (WACV 2023), with the settings
of their code (VICO-UoE/DatasetCondensation, ``main_DM.py``): the synthetic images ``S`` of a
level, all classes at once, minimise

    L(S) = sum_c | mean_{s in S_c} psi_theta(A_c(s)) - mean_{x in B_c} psi_theta(A_c(x)) |^2

for a network ``psi_theta`` drawn afresh at every iteration, ``B_c`` a random batch of
``real_batch`` (256) images of class ``c`` drawn from the WHOLE class (every training image,
not a subset: ``match_against="class"``), and ``A_c`` the class's siamese augmentation
(`tn_keras.distill.siamese_augmentation`, DSA). ``psi_theta`` is ConvNet-3 without its
classifier: three ``Conv3x3(128) -> InstanceNorm -> ReLU -> AvgPool2`` blocks, flattened
(``embedding_network="convnet3"``), or the small evaluator's two ``Conv3x3 -> ReLU -> MaxPool2``
blocks (``"small"``). Kernels are uniform in ``+-1/sqrt(fan_in)`` (PyTorch's default, as DM
draws them); a convolution's bias is omitted because the instance normalisation after it
removes any per-channel constant. The images are optimised in normalised units
``z = (x / 255 - mean) / std`` (per channel, over the training data) by SGD with momentum 0.5
and learning rate 1.0, 20,000 iterations per level, and projected back into the pixel range
after every step (DM leaves them unbounded; here every level is exported as uint8, so the
optimum is sought among exportable images).

With multi-formation (``formation=f > 1``, `tn_keras.datasets.multi_formation`), ``S`` holds slots
and the images matched are their decoded tiles, ``f^2`` a slot, each with its slot's class:
the gradient reaches the stored pixels through the (linear) decoding.

The multi-level hierarchy is kept: level ``a`` starts from one image per group of level
``a - 1`` (`tn_keras.distill.groups`), and every level is matched against the whole class.

Memory and speed: the real data stay on the host as a NumPy pool (`ClassPool`); an iteration
sends one batch of ``classes x real_batch`` uint8 images, the random kernels and the
augmentation parameters to the device, and runs ONE compiled Keras step (``train_on_batch`` of
`ClassMatcher`, jitted under JAX). Every random draw comes from ``numpy.random.default_rng(
[seed, level, 17])``, so a level is a deterministic function of its inputs and settings.
"""
from __future__ import annotations

import logging
import time

import keras
import numpy as np
from keras import ops

from tn_keras.datasets import multi_formation
from tn_keras.distill import level_progress
from tn_keras.distill import siamese_augmentation as dsa
from tn_keras.distill.config import PIXEL_MAX
from tn_keras.utils.paused import RunPaused

log = logging.getLogger("tn_keras.distill")

#: The random embedding networks' channels per block.
NETWORK_CHANNELS = {"convnet3": (128, 128, 128), "small": (32, 64)}
#: SGD momentum on the images (DM's ``torch.optim.SGD(..., momentum=0.5)``).
MOMENTUM = 0.5
INSTANCE_NORM_EPSILON = 1e-5
#: How often the running loss is logged (iterations).
LOG_EVERY = 500


def pixel_statistics(x: np.ndarray, chunk: int = 4096):
    """Per-channel mean and standard deviation of ``x`` (0..255) in 0..1 units, float64 sums
    over chunks (no float copy of the whole data)."""
    channels = x.shape[-1]
    total, squares, count = np.zeros(channels), np.zeros(channels), 0
    for start in range(0, len(x), chunk):
        part = np.asarray(x[start:start + chunk], np.float64).reshape(-1, channels) / PIXEL_MAX
        total += part.sum(axis=0)
        squares += np.square(part).sum(axis=0)
        count += len(part)
    mean = total / count
    return mean, np.sqrt(np.maximum(squares / count - np.square(mean), 1e-12))


class ClassPool:
    """The real images to match, kept on the host; `draw` gives one iteration's batch."""

    def __init__(self, x: np.ndarray, y: np.ndarray, classes: np.ndarray):
        self.x = x  # as given (uint8 stays uint8): no float copy of the whole classes
        self.indices = [np.flatnonzero(np.asarray(y) == c) for c in classes]
        empty = [int(c) for c, idx in zip(classes, self.indices) if len(idx) == 0]
        if empty:
            raise ValueError(f"the real pool has no image of class(es) {empty}.")

    def draw(self, rng, batch: int):
        """``batch`` images per class (all of a smaller class), without replacement, and their
        dense class ids ``0..C-1``."""
        picks = [rng.choice(idx, size=min(batch, len(idx)), replace=False)
                 for idx in self.indices]
        classes = np.concatenate([np.full(len(p), i, np.int32) for i, p in enumerate(picks)])
        return np.asarray(self.x[np.concatenate(picks)]), classes


def draw_network(rng, network: str, channels_in: int) -> list:
    """Fresh 3x3 kernels ``U(+-1/sqrt(fan_in))`` for every block of ``network``."""
    kernels, previous = [], channels_in
    for width in NETWORK_CHANNELS[network]:
        bound = 1.0 / np.sqrt(9 * previous)
        kernels.append(rng.uniform(-bound, bound, (3, 3, previous, width)).astype(np.float32))
        previous = width
    return kernels


def embed(images, kernels, network: str):
    """``psi_theta(images)`` of normalised images: the blocks of ``network``, flattened."""
    h = images
    for kernel in kernels:
        h = ops.conv(h, kernel, 1, "same")
        if network == "convnet3":
            mean = ops.mean(h, axis=(1, 2), keepdims=True)
            variance = ops.var(h, axis=(1, 2), keepdims=True)
            h = (h - mean) / ops.sqrt(variance + INSTANCE_NORM_EPSILON)
            h = ops.average_pool(ops.relu(h), 2, 2, "valid")
        else:
            h = ops.max_pool(ops.relu(h), 2, 2, "valid")
    return ops.reshape(h, (ops.shape(h)[0], -1))


def class_means(values, classes, num_classes: int):
    """Mean row of ``values`` per dense class id (0 for an absent class)."""
    total = ops.segment_sum(values, classes, num_segments=num_classes)
    count = ops.segment_sum(ops.ones_like(values[:, :1]), classes, num_segments=num_classes)
    return total / ops.maximum(count, 1.0)


class ClipRange(keras.constraints.Constraint):
    """``z -> clip(z, low_c, high_c)`` per channel: normalised images stay in 0..255."""

    def __init__(self, low, high):
        self.low = [float(v) for v in low]
        self.high = [float(v) for v in high]

    def __call__(self, w):
        return ops.clip(w, ops.convert_to_tensor(self.low, w.dtype),
                        ops.convert_to_tensor(self.high, w.dtype))

    def get_config(self):
        return {"low": self.low, "high": self.high}


class ClassMatcher(keras.Model):
    """The synthetic images of one level (normalised units); ``call`` gives, per class,
    ``mean_syn - mean_real`` of the embeddings. Its loss is `SumOfSquares` of that.

    Inputs (one iteration): ``real`` (uint8 or float, 0..255), ``real_class``, ``syn_class``
    (dense ids of the decoded images), ``kernels`` (the random network), and with DSA
    ``real_aug`` / ``syn_aug`` (`siamese_augmentation.draw_parameters`). ``formation``: the
    multi-formation factor of the stored slots (1: the slots are the images).
    """

    def __init__(self, start_normalised, num_classes, network, use_dsa, mean, std,
                 formation=multi_formation.NO_FORMATION, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(name="class_matcher", **kwargs)
        self.num_classes, self.network, self.use_dsa = int(num_classes), network, bool(use_dsa)
        self.formation = int(formation)
        self.mean = [float(v) for v in mean]
        self.std = [float(v) for v in std]
        low = [(0.0 - m) / s for m, s in zip(self.mean, self.std)]
        high = [(1.0 - m) / s for m, s in zip(self.mean, self.std)]
        start = np.asarray(start_normalised, np.float32)
        self.pixels = self.add_weight(shape=start.shape, initializer="zeros", trainable=True,
                                      constraint=ClipRange(low, high), name="pixels")
        self.pixels.assign(start)
        self.built = True  # all state exists: no symbolic build on fake data

    def normalise(self, images):
        x = ops.cast(images, "float32") / PIXEL_MAX
        return (x - ops.convert_to_tensor(self.mean)) / ops.convert_to_tensor(self.std)

    def call(self, inputs):
        real = ops.stop_gradient(self.normalise(inputs["real"]))
        # Decoding is linear with rows summing to 1, so it commutes with the normalisation.
        syn = multi_formation.decode_ops(ops.convert_to_tensor(self.pixels), self.formation)
        if self.use_dsa:
            real = dsa.augment(real, **inputs["real_aug"])
            syn = dsa.augment(syn, **inputs["syn_aug"])
        real_e = ops.stop_gradient(embed(real, inputs["kernels"], self.network))
        syn_e = embed(syn, inputs["kernels"], self.network)
        return (class_means(syn_e, inputs["syn_class"], self.num_classes)
                - class_means(real_e, inputs["real_class"], self.num_classes))


class SumOfSquares(keras.losses.Loss):
    """``sum_c |y_pred_c - y_true_c|^2`` (summed over classes and features)."""

    def __init__(self, name: str = "sum_of_squares"):
        super().__init__(name=name, reduction="sum")

    def call(self, y_true, y_pred):
        return ops.sum(ops.square(y_pred - y_true), axis=-1)


def draw_iteration(rng, pool: ClassPool, syn_class, settings, shape) -> dict:
    """One iteration's inputs, in the rng's fixed order: real batch, network, augmentation."""
    real, real_class = pool.draw(rng, settings.real_batch)
    inputs = dict(real=real, real_class=real_class, syn_class=syn_class,
                  kernels=draw_network(rng, settings.embedding_network, shape[-1]))
    if settings.dsa:
        height, width, channels = shape
        kinds = rng.integers(0, len(dsa.kinds_for(channels)), size=len(pool.indices))
        inputs["real_aug"] = dsa.draw_parameters(rng, kinds, real_class, height, width,
                                                 channels)
        inputs["syn_aug"] = dsa.draw_parameters(rng, kinds, syn_class, height, width,
                                                channels)
    return inputs


def _dense_labels(start_labels, pool_labels):
    """The classes of the synthetic images (each must be in the pool) and their dense ids."""
    classes = np.unique(np.asarray(start_labels))
    missing = sorted(set(map(int, classes)) - set(map(int, np.unique(pool_labels))))
    if missing:
        raise ValueError(f"the real pool has no image of class(es) {missing}.")
    dense = {int(c): i for i, c in enumerate(classes)}
    return classes, np.array([dense[int(c)] for c in start_labels], np.int32)


def build_matcher(start, start_labels, pool_x, pool_y, settings, stats=None):
    """``(matcher, pool, syn_class)`` for one level, compiled with DM's optimiser;
    ``syn_class`` holds one dense id per decoded image (``f^2`` per slot)."""
    classes, syn_class = _dense_labels(start_labels, pool_y)
    factor = int(getattr(settings, "formation", None) or multi_formation.NO_FORMATION)
    syn_class = np.repeat(syn_class, factor * factor)
    mean, std = stats if stats is not None else pixel_statistics(pool_x)
    start = (np.asarray(start, np.float32) / PIXEL_MAX - mean) / std
    matcher = ClassMatcher(start, len(classes), settings.embedding_network, settings.dsa,
                           mean, std, formation=factor)
    matcher.compile(optimizer=keras.optimizers.SGD(settings.learning_rate, momentum=MOMENTUM),
                    loss=SumOfSquares())
    return matcher, ClassPool(pool_x, pool_y, classes), syn_class


def to_pixels(matcher: ClassMatcher) -> np.ndarray:
    """The matcher's images back in 0..255 (float32)."""
    z = np.asarray(ops.convert_to_numpy(matcher.pixels), np.float64)
    return ((z * np.asarray(matcher.std) + np.asarray(matcher.mean)) * PIXEL_MAX).astype(
        np.float32)


def match_classes(start, start_labels, pool_x, pool_y, settings, rng, stats=None,
                  progress=None):
    """Optimise ``start`` (0..255 images, one class label each) against the pool for
    ``settings.steps`` iterations; ``(images 0..255 float32, loss per iteration)``.

    ``progress`` (a `tn_keras.distill.level_progress.LevelProgress`, or None): start from its
    saved state when it has one, save every ``SAVE_EVERY`` iterations, and at its deadline
    save and raise `tn_keras.utils.paused.RunPaused`.
    """
    matcher, pool, syn_class = build_matcher(start, start_labels, pool_x, pool_y, settings,
                                             stats)
    shape = tuple(np.shape(start)[1:])
    zeros = np.zeros((len(pool.indices), 1), np.float32)  # broadcast against (C, features)
    first, losses = progress.restore(matcher, rng) if progress is not None else (0, [])
    if first:
        log.info("dm: resuming at iteration %d of %d from %s", first, settings.steps,
                 progress.path)
    t0 = time.perf_counter()
    for it in range(first, int(settings.steps)):
        inputs = draw_iteration(rng, pool, syn_class, settings, shape)
        losses.append(float(matcher.train_on_batch(inputs, zeros)))
        if (it + 1) % LOG_EVERY == 0:
            log.info("dm iteration %d/%d: loss %.4f (mean of the last %d), %.3f s/iteration",
                     it + 1, settings.steps, float(np.mean(losses[-LOG_EVERY:])), LOG_EVERY,
                     (time.perf_counter() - t0) / (it + 1 - first))
        if progress is not None and it + 1 < settings.steps:
            _save_or_pause(progress, matcher, rng, losses, it + 1, settings.steps)
    return to_pixels(matcher), np.asarray(losses)


def _now() -> float:
    return time.time()  # the deadline's clock (a function, so that tests can move it)


def _save_or_pause(progress, matcher, rng, losses, done, steps):
    """Save every ``SAVE_EVERY`` iterations; past the deadline, save and pause."""
    late = progress.deadline is not None and _now() >= progress.deadline
    if late or done % level_progress.SAVE_EVERY == 0:
        progress.save(matcher, rng, losses, done)
    if late:
        raise RunPaused(f"the time budget ran out at iteration {done} of {steps}; the level's "
                        f"progress is saved in {progress.path}: rerun with --resume "
                        "(resume=True) to continue")


def mean_matching_loss(images, labels, pool_x, pool_y, settings, seed: int, draws: int = 8,
                       stats=None) -> float:
    """``L(S)`` of ``images`` averaged over ``draws`` iterations' random draws of
    ``default_rng(seed)`` (no update): compares two sets of images on the same draws."""
    matcher, pool, syn_class = build_matcher(images, labels, pool_x, pool_y, settings, stats)
    rng = np.random.default_rng(seed)
    shape = tuple(np.shape(images)[1:])
    total = 0.0
    for _ in range(int(draws)):
        difference = matcher(draw_iteration(rng, pool, syn_class, settings, shape))
        total += float(ops.convert_to_numpy(ops.sum(ops.square(difference))))
    return total / int(draws)
