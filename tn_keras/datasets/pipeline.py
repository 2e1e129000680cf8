"""tf.data input pipelines and the in-model normalization layer."""
from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from tn_keras.datasets.registry import AUGMENTABLE, info

CROP_PADDING = 4  # Pixels of zero padding before the random crop (He et al., 2016).
TRANSLATE_PIXELS = 2  # Largest shift of augment="translate" (digits and clothes stay whole).


def normalization_layer(name: str) -> keras.layers.Normalization:
    """Returns a `keras.layers.Normalization` holding the dataset's per-channel statistics.

    The layer maps raw 0..255 images to ``(x - mean) / std`` (``axis=-1``), so a model that
    starts with it takes raw pixels and carries its preprocessing when saved or exported.

    Args:
        name: One of `names()`.
    """
    spec = info(name)
    return keras.layers.Normalization(
        axis=-1,
        mean=list(spec.mean),
        variance=[s * s for s in spec.std],
        name=f"{name}_normalization",
    )


def make_dataset(
    x: np.ndarray,
    y: np.ndarray,
    batch_size: int,
    training: bool = False,
    augment: bool | str | None = None,
    seed: int | None = None,
    deterministic: bool | None = None,
    normalize: bool = False,
    dataset_name: str | None = None,
    shuffle_buffer: int | None = None,
    drop_remainder: bool = False,
) -> tf.data.Dataset:
    """Builds a batched ``tf.data.Dataset`` of ``(float32 images, int labels)``.

    Order of operations: shuffle (training only) -> batch -> augment -> normalize ->
    prefetch(AUTOTUNE). Augmentation runs on whole batches (vectorised) for speed: a random
    crop after ``CROP_PADDING`` pixels of zero padding and a random horizontal flip, each
    image with its own offsets. Pixels stay in 0..255 unless ``normalize=True``.

    Determinism: with ``deterministic=True`` (the default when ``seed`` is given) the same
    seed yields the same batches and augmentations. Shuffling uses the op seed; augmentation
    uses stateless random ops keyed on a per-batch seed drawn from
    ``tf.data.Dataset.random(seed, rerandomize_each_iteration=True)``, so each epoch differs
    but the sequence of epochs is reproducible.

    Args:
        x: Images ``(N, H, W, C)``, e.g. from `load`.
        y: Integer labels ``(N,)``.
        batch_size: Images per batch.
        training: Shuffle, and by default augment ``cifar10``.
        augment: True for crop+flip augmentation, ``"translate"`` for random shifts of up to
            ``TRANSLATE_PIXELS`` pixels without flips (for digits and clothes: a mirrored 2
            is not a 2), False for none. None means crop+flip when ``training and
            dataset_name == "cifar10"``. True is refused for digit datasets, where flips
            and larger shifts change or cut off the glyph.
        seed: Seed for shuffling and augmentation.
        deterministic: Reproducible order and augmentation; None means ``seed is not
            None``. True without a seed uses seed 0.
        normalize: Apply ``(x - mean) / std`` with the statistics of ``dataset_name``.
            Off by default because zoo models carry their own `normalization_layer`.
        dataset_name: Dataset the arrays come from; needed for ``normalize`` and the
            augmentation default.
        shuffle_buffer: Shuffle buffer size; None shuffles over the whole array.
        drop_remainder: Drop the last incomplete batch.

    Raises:
        ValueError: On inconsistent arguments.
    """
    if x.ndim != 4:
        raise ValueError(f"x must have shape (N, H, W, C), got {x.shape}.")
    if len(x) != len(y):
        raise ValueError(f"x has {len(x)} images but y has {len(y)} labels.")
    if dataset_name is not None:
        info(dataset_name)  # Validates the name.
    if augment is None:
        augment = training and dataset_name in AUGMENTABLE
    elif isinstance(augment, str):
        if augment != "translate":
            raise ValueError(f"Invalid value for argument `augment`: expected a bool, None or "
                             f"'translate'. Received augment={augment!r}.")
    elif augment and dataset_name is not None and dataset_name not in AUGMENTABLE:
        raise ValueError(
            f"augment=True is not supported for dataset_name={dataset_name!r}: flips and "
            f"crops are label-preserving only for {sorted(AUGMENTABLE)}."
        )
    if normalize and dataset_name is None:
        raise ValueError("normalize=True needs dataset_name to know the statistics.")
    if deterministic is None:
        deterministic = seed is not None
    if deterministic and seed is None:
        seed = 0

    ds = tf.data.Dataset.from_tensor_slices((x, y))
    if training:
        ds = ds.shuffle(shuffle_buffer or len(x), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size, drop_remainder=drop_remainder)
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
    if normalize:
        spec = info(dataset_name)
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
