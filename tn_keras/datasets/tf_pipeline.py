"""The tf.data input pipeline, used when TensorFlow is the Keras backend.

`tn_keras.datasets.make_dataset` checks the arguments and calls `make_tf_dataset`; this module
imports TensorFlow, so nothing else imports it under another backend.
"""
from __future__ import annotations

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
