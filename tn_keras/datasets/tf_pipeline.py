"""The tf.data input pipeline, used when TensorFlow is the Keras backend.

`tn_keras.datasets.make_dataset` checks the arguments and calls `make_tf_dataset`; this module
imports TensorFlow, so nothing else imports it under another backend.
"""
from __future__ import annotations

import keras
import tensorflow as tf

from tn_keras.datasets.augment import CROP_PADDING, TRANSLATE_PIXELS
from tn_keras.datasets.augment import base_flips
from tn_keras.datasets.registry import info


def make_tf_dataset(x, y, batch_size, training, options) -> tf.data.Dataset:
    """The batched ``tf.data.Dataset``; ``options`` a `PipelineConfig` resolved by
    `make_dataset`.

    A deterministic training pipeline is an `EpochKeyedDataset`: batch ``i`` of epoch ``e`` is
    a pure function of ``(seed, e, i)``, so a run resumed at any epoch sees the batches an
    uninterrupted run saw. Otherwise shuffling uses tf.data's own (``reshuffle_each_iteration``)
    and augmentation stateless random ops keyed on a per-batch seed drawn from
    ``tf.data.Dataset.random(seed, rerandomize_each_iteration=True)``: each epoch differs, and
    the order of an epoch depends on how often the process has iterated the dataset.
    """
    augment, seed, deterministic = options.augment, options.seed, options.deterministic
    if (training and deterministic) or augment == "flip_translate":  # its flips need epochs
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
            lambda batch, s: (_crop_and_flip(batch[0], _key(s, 0)), batch[1]),
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
            lambda batch, s: (_translate(batch[0], _key(s, 1)), batch[1]),
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=deterministic or None,
        )
    if options.normalize:
        normalize = _normalizer(options.dataset_name)
        ds = ds.map(lambda xb, yb: (normalize(xb), yb),
                    num_parallel_calls=tf.data.AUTOTUNE, deterministic=deterministic or None)
    if deterministic:
        options = tf.data.Options()
        options.deterministic = True
        ds = ds.with_options(options)
    return ds.prefetch(tf.data.AUTOTUNE)


def _key(batch_seed: tf.Tensor, stream: int) -> tf.Tensor:
    """The stateless-random key of one batch: its seed, and the augmentation's own stream."""
    return tf.stack([batch_seed, tf.constant(stream, tf.int64)])


def _normalizer(dataset_name):
    spec = info(dataset_name)
    mean = tf.constant(spec.mean, tf.float32)
    std = tf.constant(spec.std, tf.float32)
    return lambda images: (images - mean) / std


def _crop_and_flip(images: tf.Tensor, key: tf.Tensor) -> tf.Tensor:
    """Random zero-padded crop and horizontal flip of a batch: each image gets its own row
    offset, column offset and flip bit, drawn from the stateless-random ``key`` (two int64)."""
    return _shift_batch(tf.cast(images, tf.float32), key, CROP_PADDING, random_flips=True)


def _translate(images: tf.Tensor, key: tf.Tensor) -> tf.Tensor:
    """Random shifts of up to ``TRANSLATE_PIXELS`` in each direction, one offset per image:
    a crop of the zero-padded image, never a flip, keyed on ``key`` (two int64)."""
    return _shift_batch(images, key, TRANSLATE_PIXELS)


def _reflect_translate(images, flips, key):
    """Shifts of up to ``TRANSLATE_PIXELS`` of the reflection-padded batch, and its flips."""
    return _shift_batch(images, key, TRANSLATE_PIXELS, flips=flips, mode="REFLECT")


def _shift_batch(images, key, padding, flips=None, random_flips=False, mode="CONSTANT"):
    """A crop of each padded image at a random offset of 0..2*padding, flipped where ``flips``
    (or, with ``random_flips``, where a third random stream says so), one gather per axis.

    The flip is folded into the column indices, so the whole batch costs a pad and two
    batched gathers. The key is split into 2 streams (rows, columns), or 3 with random flips:
    the split depends on the count, so each augmentation keeps the draws it always had.
    """
    shape = tf.shape(images)
    n, h, w = shape[0], shape[1], shape[2]
    seeds = tf.random.experimental.stateless_split(key, num=3 if random_flips else 2)
    dy = tf.random.stateless_uniform([n], seeds[0], 0, 2 * padding + 1, dtype=tf.int32)
    dx = tf.random.stateless_uniform([n], seeds[1], 0, 2 * padding + 1, dtype=tf.int32)
    if random_flips:
        flips = tf.random.stateless_uniform([n], seeds[2], 0, 2, dtype=tf.int32) > 0
    padded = tf.pad(images, [[0, 0], [padding, padding], [padding, padding], [0, 0]],
                    mode=mode)
    rows = dy[:, None] + tf.range(h)[None, :]
    cols = tf.range(w)[None, :]
    if flips is not None:
        cols = tf.where(flips[:, None], tf.range(w - 1, -1, -1)[None, :], cols)
    out = tf.gather(padded, rows, axis=1, batch_dims=1)
    return tf.gather(out, dx[:, None] + cols, axis=2, batch_dims=1)


class EpochKeyedDataset:
    """A training pipeline whose batches are a pure function of ``(seed, epoch, batch)``.

    The epoch is a variable that `EpochClock` sets from ``fit``'s own epoch number before the
    epoch's iterator starts; the order of the epoch is a stateless permutation keyed on
    ``(seed, epoch)``, and the augmentation of batch ``i`` on ``(seed, epoch, i)``. A run
    resumed at epoch ``e`` therefore sees exactly the batches an uninterrupted run saw from
    ``e`` on (``tf.data``'s own shuffle counts iterations of the process instead, so a resumed
    process started again at epoch 0's order). Iterated without the clock (``fit`` without
    the ``epoch_clock`` callback, or a plain loop), each pass moves to the next epoch, as a
    reshuffling dataset would. The images live in a variable, not in the graph, so the
    pipeline does not copy them into a constant.

    Augmentations (`tn_keras.datasets.augment`): "flip_translate" flips image ``k`` in epoch
    ``e`` when ``b_k XOR (e mod 2)``, with the same ``b_k`` as the NumPy pipeline, and shifts a
    crop of the reflection-padded image; True is a random crop of the zero-padded image and a
    random flip; "translate" a random shift of the zero-padded image; False none.
    """

    def __init__(self, x, y, batch_size, training, options):
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
            # Read the epoch, and step it for an iteration that no clock sets (see above); the
            # epoch travels with its rows, so a batch never reads a later value.
            epoch = self.epoch.assign_add(1) - 1
            key = tf.stack([seed, epoch])
            order = tf.argsort(tf.random.stateless_uniform([self.n], key)) if self.training \
                else tf.range(self.n)
            return tf.data.Dataset.from_tensor_slices(
                (order, tf.fill([self.n], tf.cast(epoch, tf.int64))))

        ds = tf.data.Dataset.range(1).flat_map(epoch_order)
        ds = ds.batch(self.batch_size, drop_remainder=self.drop_remainder).enumerate()
        # flat_map hides the length; stated, `fit` shows progress against it and does not
        # warn at the end of the first epoch that the input "ran out of data".
        batches = (self.n // self.batch_size if self.drop_remainder
                   else -(-self.n // self.batch_size))
        ds = ds.apply(tf.data.experimental.assert_cardinality(batches))
        ds = ds.map(self._batch, num_parallel_calls=tf.data.AUTOTUNE,
                    deterministic=True)
        tf_options = tf.data.Options()
        tf_options.deterministic = True
        ds = ds.with_options(tf_options).prefetch(tf.data.AUTOTUNE)
        ds.epoch_clock = EpochClock(self.epoch)
        return ds

    def _batch(self, index, batch):
        rows, epochs = batch
        images = tf.cast(tf.gather(self.images, rows), tf.float32)
        labels = tf.gather(self.labels, rows)
        if self.training:
            images = self._augment(images, rows, epochs[0], index)
        if self.options.normalize:
            images = _normalizer(self.options.dataset_name)(images)
        return images, labels

    def _augment(self, images, rows, epoch, index):
        key = tf.stack([tf.constant(self.seed, tf.int64), epoch * 1_000_003 + index])
        augment = self.options.augment
        if augment == "flip_translate":
            flips = tf.math.logical_xor(tf.gather(self.flips, rows),
                                        tf.math.equal(epoch % 2, 1))
            return _reflect_translate(images, flips, key)
        if augment is True:
            return _crop_and_flip(images, key)
        if augment == "translate":
            return _translate(images, key)
        return images


class EpochClock(keras.callbacks.Callback):
    """Sets an `EpochKeyedDataset`'s epoch from ``fit``'s epoch number (resumed runs
    included) before the epoch's batches are drawn."""

    def __init__(self, variable):
        super().__init__()
        self.variable = variable

    def on_epoch_begin(self, epoch, logs=None):
        self.variable.assign(int(epoch))
