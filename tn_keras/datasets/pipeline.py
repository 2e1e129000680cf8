"""Training and evaluation input pipelines, one per backend, and the in-model normalization.

`make_dataset` checks its arguments once (`PipelineConfig`,
`tn_keras.datasets.pipeline_options`) and returns a ``tf.data.Dataset`` when TensorFlow is the
Keras backend (`tn_keras.datasets.tf_pipeline`) and a `keras.utils.PyDataset` of NumPy batches
otherwise (`tn_keras.datasets.array_pipeline`): the same augmentation maths
(`tn_keras.datasets.augment`), the same determinism given a seed. Neither module is imported
before it is needed, so this one never imports TensorFlow.
"""
from __future__ import annotations

import keras
import numpy as np

from tn_keras.datasets.augment import CROP_PADDING, TRANSLATE_PIXELS  # noqa: F401 (public)
from tn_keras.datasets.pipeline_options import PIPELINES  # noqa: F401 (public)
from tn_keras.datasets.pipeline_options import PipelineConfig
from tn_keras.datasets.pipeline_options import default_pipeline  # noqa: F401 (public)
from tn_keras.datasets.registry import info
from tn_keras.utils.options import deprecated_aliases as _deprecated_aliases
from tn_keras.utils.options import with_keywords


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


def make_dataset(x: np.ndarray, y: np.ndarray, batch_size: int, training: bool = False,
                 options: PipelineConfig | None = None, **keywords):
    """Builds batches of ``(float32 images, int labels)`` for ``fit`` / ``predict``.

    Order of operations: shuffle (training only) -> batch -> augment -> normalize. Augmentation
    runs on whole batches: a random crop after ``CROP_PADDING`` pixels of zero padding and a
    random horizontal flip, each image with its own offsets. Pixels stay in 0..255 unless
    ``normalize=True``.

    Determinism: with ``deterministic=True`` (the default when ``seed`` is given) the same
    seed yields the same batches and augmentations, and each epoch differs from the last.

    ``make_dataset(x, y, 128, True, PipelineConfig(seed=0, dataset_name="cifar10"))`` and
    ``make_dataset(x, y, 128, training=True, seed=0, dataset_name="cifar10")`` are the same
    call: keyword arguments name `PipelineConfig` fields and replace the options' values.

    Args:
        x: Images ``(N, H, W, C)``, e.g. from `load`.
        y: Integer labels ``(N,)``.
        batch_size: Images per batch.
        training: Shuffle, and by default augment ``cifar10``.
        options: a `PipelineConfig` (None: the defaults).
        **keywords: `PipelineConfig` fields; an unknown name is a TypeError listing them.

    Returns:
        A ``tf.data.Dataset`` (``pipeline="tf.data"``) or a `keras.utils.PyDataset`
        (``"numpy"``); by default the one of the Keras backend (`default_pipeline`).

    Raises:
        ValueError: On inconsistent arguments, naming the argument.
    """
    options = with_keywords(options, PipelineConfig, keywords, "make_dataset").resolved(
        training)
    _check_arrays(x, y)
    if options.pipeline == "tf.data":
        from tn_keras.datasets.tf_pipeline import make_tf_dataset

        return make_tf_dataset(x, y, batch_size, training, options)
    from tn_keras.datasets.array_pipeline import ArrayDataset

    return ArrayDataset(x, y, batch_size, training, options)


def _check_arrays(x, y):
    if x.ndim != 4:
        raise ValueError(f"x must have shape (N, H, W, C), got {x.shape}.")
    if len(x) != len(y):
        raise ValueError(f"x has {len(x)} images but y has {len(y)} labels.")


# The old names (renamed so that every config object ends in Config): importable from here as
# before, with a DeprecationWarning; each is the new class itself.
__getattr__ = _deprecated_aliases(__name__, {
    "PipelineOptions": ("PipelineConfig", PipelineConfig),
})
