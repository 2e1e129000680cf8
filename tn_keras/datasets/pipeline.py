"""Training and evaluation input pipelines, one per backend, and the in-model normalization.

`make_dataset` checks its arguments once and returns a ``tf.data.Dataset`` when TensorFlow is
the Keras backend (`tn_keras.datasets.tf_pipeline`) and a `keras.utils.PyDataset` of NumPy
batches otherwise (`tn_keras.datasets.array_pipeline`): the same augmentation maths
(`tn_keras.datasets.augment`), the same determinism given a seed. Neither module is imported
before it is needed, so this one never imports TensorFlow.
"""
from __future__ import annotations

import keras
import numpy as np

from tn_keras.datasets.augment import CROP_PADDING, TRANSLATE_PIXELS  # noqa: F401 (public)
from tn_keras.datasets.registry import AUGMENTABLE, info

PIPELINES = ("tf.data", "numpy")


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


def default_pipeline() -> str:
    """``"tf.data"`` under the TensorFlow backend, ``"numpy"`` under any other."""
    return "tf.data" if keras.backend.backend() == "tensorflow" else "numpy"


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
    pipeline: str | None = None,
    workers: int | None = None,
):
    """Builds batches of ``(float32 images, int labels)`` for ``fit`` / ``predict``.

    Order of operations: shuffle (training only) -> batch -> augment -> normalize. Augmentation
    runs on whole batches: a random crop after ``CROP_PADDING`` pixels of zero padding and a
    random horizontal flip, each image with its own offsets. Pixels stay in 0..255 unless
    ``normalize=True``.

    Determinism: with ``deterministic=True`` (the default when ``seed`` is given) the same
    seed yields the same batches and augmentations, and each epoch differs from the last.

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
        shuffle_buffer: tf.data shuffle buffer size; None shuffles over the whole array (the
            NumPy pipeline always does).
        drop_remainder: Drop the last incomplete batch.
        pipeline: ``"tf.data"`` (a ``tf.data.Dataset``) or ``"numpy"`` (a
            `keras.utils.PyDataset`); None picks by the Keras backend (`default_pipeline`).
        workers: Threads of the NumPy pipeline (default: the CPU cores, at most 4).

    Raises:
        ValueError: On inconsistent arguments.
    """
    augment, seed, deterministic = _check_arguments(x, y, training, augment, seed,
                                                    deterministic, normalize, dataset_name)
    pipeline = pipeline or default_pipeline()
    if pipeline == "tf.data":
        from tn_keras.datasets.tf_pipeline import make_tf_dataset

        return make_tf_dataset(x, y, batch_size, training, augment, seed, deterministic,
                               normalize, dataset_name, shuffle_buffer, drop_remainder)
    if pipeline == "numpy":
        from tn_keras.datasets.array_pipeline import ArrayDataset

        return ArrayDataset(x, y, batch_size, training, augment, seed, normalize, dataset_name,
                            drop_remainder, workers=workers)
    raise ValueError(f"Invalid value for argument `pipeline`: expected one of {PIPELINES} or "
                     f"None. Received pipeline={pipeline!r}.")


def _check_arguments(x, y, training, augment, seed, deterministic, normalize, dataset_name):
    """Validates the arguments; returns the resolved ``(augment, seed, deterministic)``."""
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
    return augment, seed, deterministic
