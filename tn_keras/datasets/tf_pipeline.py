"""The tf.data input pipeline, used when TensorFlow is the Keras backend.

`tn_keras.datasets.make_dataset` checks the arguments and calls `make_tf_dataset`; this module
imports TensorFlow, so nothing else imports it under another backend.
"""
from __future__ import annotations

import keras
import tensorflow as tf

from tn_keras.datasets.augment import CROP_PADDING, TRANSLATE_PIXELS
from tn_keras.datasets.registry import info


def make_tf_dataset(x, y, batch_size, training, options) -> tf.data.Dataset:
    """The batched ``tf.data.Dataset``; ``options`` a `PipelineOptions` resolved by
    `make_dataset`.

    Shuffling uses the op seed; augmentation uses stateless random ops keyed on a per-batch
    seed drawn from ``tf.data.Dataset.random(seed, rerandomize_each_iteration=True)``, so each
    epoch differs but the sequence of epochs is reproducible.
    """
    augment, seed, deterministic = options.augment, options.seed, options.deterministic
    if augment == "flip_translate":
        return EpochKeyedDataset(x, y, batch_size, training, options).dataset()
    ds = tf.data.Dataset.from_tensor_slices((x, y))
    if training:
        ds = ds.shuffle(options.shuffle_buffer or len(x), seed=seed,
                        reshuffle_each_iteration=True)
    ds = ds.batch(batch_size, drop_remainder=options.drop_remainder)
    if augment is True:
        # One int64 per batch, re-drawn every epoch but reproducible from `seed`.
        batch_seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)
        ds = tf.data.Dataset.zip((ds, batch_seeds)).map(
            lambda batch, s: (_crop_and_flip(batch[0], s), batch[1]),
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=deterministic or None,
        )
    else:
        ds = ds.map(lambda xb, yb: (tf.cast(xb, tf.float32), yb),
                    num_parallel_calls=tf.data.AUTOTUNE, deterministic=deterministic or None)
    if augment == "translate":
        # Its own stream of batch seeds (seed + 1), independent of the shuffling's.
        batch_seeds = tf.data.Dataset.random(seed=seed + 1, rerandomize_each_iteration=True)
        ds = tf.data.Dataset.zip((ds, batch_seeds)).map(
            lambda batch, s: (_translate(batch[0], s), batch[1]),
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=deterministic or None,
        )
    if options.normalize:
        spec = info(options.dataset_name)
        mean = tf.constant(spec.mean, tf.float32)
        std = tf.constant(spec.std, tf.float32)
        ds = ds.map(lambda xb, yb: ((xb - mean) / std, yb),
                    num_parallel_calls=tf.data.AUTOTUNE, deterministic=deterministic or None)
    if deterministic:
        options = tf.data.Options()
        options.deterministic = True
        ds = ds.with_options(options)
    return ds.prefetch(tf.data.AUTOTUNE)


def _crop_and_flip(images: tf.Tensor, batch_seed: tf.Tensor) -> tf.Tensor:
    """Random zero-padded crop and horizontal flip of a batch, one gather per axis.

    Each image gets its own row offset, column offset and flip bit. The flip is folded into
    the column indices, so the whole batch costs a pad and two batched gathers.
    """
    images = tf.cast(images, tf.float32)
    shape = tf.shape(images)
    n, h, w = shape[0], shape[1], shape[2]
    p = CROP_PADDING
    seeds = tf.random.experimental.stateless_split(
        tf.stack([batch_seed, tf.constant(0, tf.int64)]), num=3)
    dy = tf.random.stateless_uniform([n], seeds[0], 0, 2 * p + 1, dtype=tf.int32)
    dx = tf.random.stateless_uniform([n], seeds[1], 0, 2 * p + 1, dtype=tf.int32)
    flip = tf.random.stateless_uniform([n], seeds[2], 0, 2, dtype=tf.int32) > 0
    padded = tf.pad(images, [[0, 0], [p, p], [p, p], [0, 0]])
    rows = dy[:, None] + tf.range(h)[None, :]
    cols = tf.where(flip[:, None], tf.range(w - 1, -1, -1)[None, :], tf.range(w)[None, :])
    cols = dx[:, None] + cols
    out = tf.gather(padded, rows, axis=1, batch_dims=1)
    return tf.gather(out, cols, axis=2, batch_dims=1)


def _translate(images: tf.Tensor, batch_seed: tf.Tensor) -> tf.Tensor:
    """Random shifts of up to ``TRANSLATE_PIXELS`` in each direction, one offset per image.

    A crop of the zero-padded image, never a flip. Stateless random ops keyed on the batch
    seed keep runs reproducible.
    """
    p = TRANSLATE_PIXELS
    shape = tf.shape(images)
    n, h, w = shape[0], shape[1], shape[2]
    seeds = tf.random.experimental.stateless_split(
        tf.stack([batch_seed, tf.constant(1, tf.int64)]), num=2)
    dy = tf.random.stateless_uniform([n], seeds[0], 0, 2 * p + 1, dtype=tf.int32)
    dx = tf.random.stateless_uniform([n], seeds[1], 0, 2 * p + 1, dtype=tf.int32)
    padded = tf.pad(images, [[0, 0], [p, p], [p, p], [0, 0]])
    rows = dy[:, None] + tf.range(h)[None, :]
    cols = dx[:, None] + tf.range(w)[None, :]
    out = tf.gather(padded, rows, axis=1, batch_dims=1)
    return tf.gather(out, cols, axis=2, batch_dims=1)


class EpochKeyedDataset:
    """A training pipeline whose batches are a pure function of ``(seed, epoch, batch)``.

    The epoch is a variable that `EpochClock` sets from ``fit``'s own epoch number before the
    epoch's iterator starts; the order of the epoch is a stateless permutation keyed on
    ``(seed, epoch)``, and the shifts of batch ``i`` on ``(seed, epoch, i)``. A run resumed at
    epoch ``e`` therefore sees exactly the batches an uninterrupted run saw from ``e`` on
    (``tf.data``'s own shuffle counts iterations of the process instead). The images live in
    a variable, not in the graph, so the pipeline does not copy them into a constant.

    The augmentation is "flip_translate" (`tn_keras.datasets.augment`): the flip bit of
    image ``k`` in epoch ``e`` is ``b_k XOR (e mod 2)``, with the same ``b_k`` as the NumPy
    pipeline, and the shift is a crop of the reflection-padded image.
    """

    def __init__(self, x, y, batch_size, training, options):
        from tn_keras.datasets.augment import base_flips

        self.n = len(x)
        self.batch_size = int(batch_size)
        self.training = training
        self.seed = int(options.seed or 0)
        self.drop_remainder = options.drop_remainder
        self.options = options
        self.images = tf.Variable(x, trainable=False, name="pipeline_images")
        self.labels = tf.constant(y)
        self.flips = tf.constant(base_flips(self.seed, self.n))
        self.epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="pipeline_epoch")

    def dataset(self) -> tf.data.Dataset:
        seed = tf.constant(self.seed, tf.int64)

        def epoch_order(_):
            key = tf.stack([seed, self.epoch.read_value()])
            order = tf.argsort(tf.random.stateless_uniform([self.n], key)) if self.training \
                else tf.range(self.n)
            return tf.data.Dataset.from_tensor_slices(order)

        ds = tf.data.Dataset.range(1).flat_map(epoch_order)
        ds = ds.batch(self.batch_size, drop_remainder=self.drop_remainder).enumerate()
        ds = ds.map(self._batch, num_parallel_calls=tf.data.AUTOTUNE,
                    deterministic=True)
        tf_options = tf.data.Options()
        tf_options.deterministic = True
        ds = ds.with_options(tf_options).prefetch(tf.data.AUTOTUNE)
        ds.epoch_clock = EpochClock(self.epoch)
        return ds

    def _batch(self, index, rows):
        images = tf.cast(tf.gather(self.images, rows), tf.float32)
        labels = tf.gather(self.labels, rows)
        if not self.training:
            return images, labels
        epoch = self.epoch.read_value()
        flips = tf.math.logical_xor(tf.gather(self.flips, rows), tf.math.equal(epoch % 2, 1))
        key = tf.stack([tf.constant(self.seed, tf.int64), epoch * 1_000_003 + index])
        return _reflect_translate(images, flips, key), labels


def _reflect_translate(images, flips, key):
    """Shifts of up to ``TRANSLATE_PIXELS`` of the reflection-padded batch, and its flips."""
    p = TRANSLATE_PIXELS
    shape = tf.shape(images)
    n, h, w = shape[0], shape[1], shape[2]
    seeds = tf.random.experimental.stateless_split(key, num=2)
    dy = tf.random.stateless_uniform([n], seeds[0], 0, 2 * p + 1, dtype=tf.int32)
    dx = tf.random.stateless_uniform([n], seeds[1], 0, 2 * p + 1, dtype=tf.int32)
    padded = tf.pad(images, [[0, 0], [p, p], [p, p], [0, 0]], mode="REFLECT")
    rows = dy[:, None] + tf.range(h)[None, :]
    cols = tf.where(flips[:, None], tf.range(w - 1, -1, -1)[None, :], tf.range(w)[None, :])
    cols = dx[:, None] + cols
    out = tf.gather(padded, rows, axis=1, batch_dims=1)
    return tf.gather(out, cols, axis=2, batch_dims=1)


class EpochClock(keras.callbacks.Callback):
    """Sets an `EpochKeyedDataset`'s epoch from ``fit``'s epoch number (resumed runs
    included) before the epoch's batches are drawn."""

    def __init__(self, variable):
        super().__init__()
        self.variable = variable

    def on_epoch_begin(self, epoch, logs=None):
        self.variable.assign(int(epoch))
