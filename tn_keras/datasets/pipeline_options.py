"""The choices of an input pipeline, shared by its two implementations.

`PipelineConfig` is what `tn_keras.datasets.make_dataset` takes (its fields are also keyword
arguments of it) and what the tf.data pipeline (`tn_keras.datasets.tf_pipeline`) and the NumPy
one (`tn_keras.datasets.array_pipeline`) read, after `PipelineConfig.resolved` has filled in
the defaults that depend on the call (augmentation, determinism, the pipeline itself).
"""
from __future__ import annotations

import dataclasses
import numbers
from typing import Optional, Union

import keras

from tn_keras.datasets.augment import NAMED_AUGMENTATIONS
from tn_keras.datasets.registry import AUGMENTABLE, info
from tn_keras.utils.options import deprecated_aliases as _deprecated_aliases

#: ``"tf.data"``: a ``tf.data.Dataset``; ``"numpy"``: a `keras.utils.PyDataset`.
PIPELINES = ("tf.data", "numpy")


def default_pipeline() -> str:
    """``"tf.data"`` under the TensorFlow backend, ``"numpy"`` under any other."""
    return "tf.data" if keras.backend.backend() == "tensorflow" else "numpy"


def _check_optional_count(name, value):
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a positive integer or None; received {value!r}.")


@dataclasses.dataclass(frozen=True)
class PipelineConfig:
    """How `make_dataset` batches, shuffles and augments; every field is also a keyword
    argument of it. Checked when made (a ValueError naming the field); `resolved` fills in the
    defaults that depend on the call (``training``, the Keras backend).

    Attributes:
        augment: True for crop+flip augmentation, ``"translate"`` for random shifts of up to
            ``TRANSLATE_PIXELS`` pixels without flips (for digits and clothes: a mirrored 2
            is not a 2), ``"flip_translate"`` for reflection-padded shifts and alternating
            flips (`tn_keras.datasets.augment`), False for none. None means crop+flip when training on ``cifar10``.
            True is refused for datasets where flips and crops change or cut off the content.
        seed: seed for shuffling and augmentation.
        deterministic: reproducible order and augmentation; None means ``seed is not None``.
            True without a seed uses seed 0.
        normalize: apply ``(x - mean) / std`` with the statistics of ``dataset_name``. Off by
            default because zoo models carry their own `normalization_layer`.
        dataset_name: the dataset the arrays come from; needed for ``normalize`` and the
            augmentation default.
        shuffle_buffer: tf.data shuffle buffer size; None shuffles over the whole array (the
            NumPy pipeline always does).
        drop_remainder: drop the last incomplete batch.
        pipeline: one of `PIPELINES`; None picks by the Keras backend (`default_pipeline`).
        workers: threads of the NumPy pipeline (None: the CPU cores, at most 4).
    """

    augment: Union[bool, str, None] = None
    seed: Optional[int] = None
    deterministic: Optional[bool] = None
    normalize: bool = False
    dataset_name: Optional[str] = None
    shuffle_buffer: Optional[int] = None
    drop_remainder: bool = False
    pipeline: Optional[str] = None
    workers: Optional[int] = None

    def __post_init__(self):
        if self.dataset_name is not None:
            info(self.dataset_name)  # a ValueError naming the registered datasets
        if isinstance(self.augment, str) and self.augment not in NAMED_AUGMENTATIONS:
            raise ValueError(f"Invalid value for argument `augment`: expected a bool, None or "
                             f"one of {NAMED_AUGMENTATIONS}. Received augment={self.augment!r}.")
        if (self.augment in (True, "flip_translate") and self.dataset_name is not None
                and self.dataset_name not in AUGMENTABLE):
            raise ValueError(
                f"augment={self.augment!r} is not supported for "
                f"dataset_name={self.dataset_name!r}: flips are label-preserving only for "
                f"{sorted(AUGMENTABLE)}.")
        if self.normalize and self.dataset_name is None:
            raise ValueError("normalize=True needs dataset_name to know the statistics.")
        if self.pipeline is not None and self.pipeline not in PIPELINES:
            raise ValueError(f"Invalid value for argument `pipeline`: expected one of "
                             f"{PIPELINES} or None. Received pipeline={self.pipeline!r}.")
        _check_optional_count("shuffle_buffer", self.shuffle_buffer)
        _check_optional_count("workers", self.workers)

    def resolved(self, training: bool) -> "PipelineConfig":
        """A copy with the call's defaults filled in: ``augment`` and ``deterministic`` are
        bools, ``seed`` is set when deterministic, ``pipeline`` is named."""
        augment = self.augment
        if augment is None:
            augment = training and self.dataset_name in AUGMENTABLE
        deterministic = self.seed is not None if self.deterministic is None else (
            self.deterministic)
        seed = 0 if deterministic and self.seed is None else self.seed
        return dataclasses.replace(self, augment=augment, deterministic=deterministic,
                                   seed=seed, pipeline=self.pipeline or default_pipeline())


# The old names (renamed so that every config object ends in Config): importable from here as
# before, with a DeprecationWarning; each is the new class itself.
__getattr__ = _deprecated_aliases(__name__, {
    "PipelineOptions": ("PipelineConfig", PipelineConfig),
})
