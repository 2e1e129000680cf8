"""Every choice of `tn-keras figures` and `tn-keras distill-eval`, in one place.

The fast set runs in about a minute on 2 CPU cores from what ships with tn_keras (the digits
checkpoint and data, mnist7_taylor's checkpoint); the full set adds MNIST and CIFAR-10 and
needs the datasets (``--data-dir`` or ``$TN_KERAS_DATA``). Sizes are kept small enough for a
2-core machine: the captions state them.
"""
from __future__ import annotations

import dataclasses
import os
from typing import Optional, Union


@dataclasses.dataclass(frozen=True)
class DistillationSpec:
    """A small multi-level distillation and its reference-classification check."""

    figure: str            # "Fig. S5", "Fig. S6", or a "-style" label for the fast set
    model: str             # zoo model (its dataset is distilled)
    per_class: int         # real training images per class at level 0 (halved per level)
    steps: int             # Adam steps per level (the distillation's default is 40)
    test_split: str
    test_images: int       # test images classified by nearest reference (the first ones)
    group_size: int = 2    # images averaged into one per level, by the cascade and its null

    def __post_init__(self):
        # Checked here: max_levels(n, 1) would never end.
        if isinstance(self.group_size, bool) or not isinstance(self.group_size, int) \
                or self.group_size < 2:
            raise ValueError(f"group_size must be an integer >= 2; got {self.group_size!r}.")


@dataclasses.dataclass(frozen=True)
class InterpretSpec:
    """Whole-model interpretation of a zoo TaylorNet on its first test images."""

    model: str
    test_split: str
    test_images: int


FAST_DISTILLATION = (DistillationSpec("Fig. S5-style (digits)", "digits_taylornet", 64, 40,
                                      "test", 360),)
FULL_DISTILLATION = (DistillationSpec("Fig. S5 (MNIST)", "mnist_taylornet", 256, 20, "test",
                                      2000),
                     DistillationSpec("Fig. S6 (CIFAR-10)", "cifar_taylornet", 128, 20,
                                      "test_lossless", 1000))
FAST_INTERPRET = (InterpretSpec("digits_taylornet", "test", 360),)
FULL_INTERPRET = (InterpretSpec("mnist_taylornet", "test", 500),
                  InterpretSpec("cifar_taylornet", "test_lossless", 300))
CLASS_NAMES = {
    "cifar10": ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                "ship", "truck"],
}


@dataclasses.dataclass(frozen=True)
class FiguresConfig:
    """What `make_figures` writes; every field is also a keyword argument of it.

    Checked when made (a ValueError naming the field); no `resolved`: ``data_dir`` None is
    read from ``$TN_KERAS_DATA`` when the figures are made, not stored.

    Attributes:
        out: the output folder (refused if it exists, unless ``overwrite``).
        full: add the MNIST / CIFAR-10 figures (needs the datasets).
        data_dir: the datasets' folder (default ``$TN_KERAS_DATA``).
        overwrite: replace an existing ``out``.
        seed: seeds the distillations and the random real references.
    """

    out: Union[str, os.PathLike]
    full: bool = False
    data_dir: Optional[Union[str, os.PathLike]] = None
    overwrite: bool = False
    seed: int = 0

    def __post_init__(self):
        for name in ("out", "data_dir"):
            value = getattr(self, name)
            if value is None and name == "data_dir":
                continue
            if not isinstance(value, (str, os.PathLike)) or not os.fspath(value).strip():
                raise ValueError(f"{name} must be a non-empty path; received {value!r}.")
            object.__setattr__(self, name, os.fspath(value))  # a str, as the CLI gives
        for name in ("full", "overwrite"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be True or False; received "
                                 f"{getattr(self, name)!r}.")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"seed must be a non-negative integer; received {self.seed!r}.")

    @property
    def distillations(self):
        return FAST_DISTILLATION + (FULL_DISTILLATION if self.full else ())

    @property
    def interpretations(self):
        return FAST_INTERPRET + (FULL_INTERPRET if self.full else ())
