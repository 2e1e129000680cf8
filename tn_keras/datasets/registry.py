"""Dataset specifications: shapes, class names, statistics and provenance.

The per-channel ``mean`` / ``std`` constants are in 0..255 pixel units, computed over the
*training* split (population std, ddof=0). They were produced by

    TN_KERAS_DATA=/path/to/data python -m tn_keras.datasets.stats

and a real-data test checks them against a recomputation (tolerance 1e-3).
"""
from __future__ import annotations

import dataclasses
import warnings
from typing import Optional

DIGIT_CLASS_NAMES = tuple(str(i) for i in range(10))


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    """Static description of a dataset.

    Attributes:
        name: Registry name, as passed to `load`.
        image_shape: ``(height, width, channels)`` of one image (channels-last).
        num_classes: Number of label values; labels are ``0 .. num_classes - 1``.
        class_names: Human-readable name of each label, indexed by label.
        mean: Per-channel mean of the training images, in 0..255 pixel units.
        std: Per-channel population standard deviation, in 0..255 pixel units.
        splits: Split names accepted by `load`.
        dtype: Dtype of the images `load` returns (``"uint8"``, or ``"float32"`` for
            ``mnist7x7``).
        description: Where the data comes from and how it is derived (prose).
        citation: Reference to cite when using the data.
        hub_dataset: The dataset's id on the Hugging Face Hub, which model cards name in
            their ``datasets`` metadata (None: the data is not on the Hub as such, e.g. a
            derived set).
    """

    name: str
    image_shape: tuple[int, int, int]
    num_classes: int
    class_names: tuple[str, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    splits: tuple[str, ...]
    dtype: str
    description: str
    citation: str
    hub_dataset: Optional[str] = None

    @property
    def source(self) -> str:
        """Deprecated name of `description`."""
        warnings.warn("DatasetInfo.source is deprecated; use DatasetInfo.description.",
                      DeprecationWarning, stacklevel=2)
        return self.description


_MNIST_CITATION = (
    "Y. LeCun, L. Bottou, Y. Bengio, P. Haffner, \"Gradient-based learning applied to "
    "document recognition\", Proc. IEEE 86(11), 1998."
)

_REGISTRY: dict[str, DatasetInfo] = {
    info.name: info
    for info in (
        DatasetInfo(
            name="mnist",
            hub_dataset="ylecun/mnist",
            image_shape=(28, 28, 1),
            num_classes=10,
            class_names=DIGIT_CLASS_NAMES,
            mean=(33.31842,),
            std=(78.56749,),
            splits=("train", "test"),
            dtype="uint8",
            description="MNIST handwritten digits, 60,000 train / 10,000 test, 28x28 grayscale.",
            citation=_MNIST_CITATION,
        ),
        DatasetInfo(
            name="fashion_mnist",
            hub_dataset="zalando-datasets/fashion_mnist",
            image_shape=(28, 28, 1),
            num_classes=10,
            class_names=(
                "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
            ),
            mean=(72.94035,),
            std=(90.02118,),
            splits=("train", "test"),
            dtype="uint8",
            description="Fashion-MNIST (Zalando), 60,000 train / 10,000 test, 28x28 grayscale.",
            citation=(
                "H. Xiao, K. Rasul, R. Vollgraf, \"Fashion-MNIST: a Novel Image Dataset for "
                "Benchmarking Machine Learning Algorithms\", arXiv:1708.07747, 2017."
            ),
        ),
        DatasetInfo(
            name="cifar10",
            hub_dataset="uoft-cs/cifar10",
            image_shape=(32, 32, 3),
            num_classes=10,
            class_names=(
                "airplane", "automobile", "bird", "cat", "deer",
                "dog", "frog", "horse", "ship", "truck",
            ),
            mean=(125.30692, 122.95039, 113.86538),
            std=(62.99322, 62.08871, 66.70490),
            splits=("train", "test", "test_lossless"),
            dtype="uint8",
            description=(
                "CIFAR-10, 50,000 train / 10,000 test, 32x32 RGB. 'test_lossless' is the part "
                "of the test split that is byte-exact: the rows flagged by the npz key "
                "'test_is_lossless' when the file has it, otherwise (official archive, "
                "tensorflow-datasets, keras download) the whole test split."
            ),
            citation=(
                "A. Krizhevsky, \"Learning Multiple Layers of Features from Tiny Images\", "
                "technical report, University of Toronto, 2009."
            ),
        ),
        DatasetInfo(
            name="digits",
            image_shape=(8, 8, 1),
            num_classes=10,
            class_names=DIGIT_CLASS_NAMES,
            mean=(77.88559,),
            std=(95.86908,),
            splits=("train", "test"),
            dtype="uint8",
            description=(
                "scikit-learn load_digits (UCI optical digits, 1,797 8x8 images, values 0..16) "
                "rescaled to uint8 by round(x * 255 / 16). Fixed split: "
                "train_test_split(test_size=0.2, stratify=y, random_state=0) -> 1,437 train "
                "/ 360 test. Ships inside scikit-learn, so it never needs files."
            ),
            citation=(
                "E. Alpaydin, C. Kaynak, \"Optical Recognition of Handwritten Digits\", UCI "
                "Machine Learning Repository, 1998."
            ),
        ),
        DatasetInfo(
            name="mnist7x7",
            image_shape=(7, 7, 1),
            num_classes=10,
            class_names=DIGIT_CLASS_NAMES,
            mean=(33.31842,),
            std=(58.83577,),
            splits=("train", "test"),
            dtype="float32",
            description=(
                "MNIST averaged over non-overlapping 4x4 blocks to 7x7. Returned as float32 in "
                "0..255: the exact block mean (a multiple of 1/16, exactly representable), "
                "not rounded to uint8."
            ),
            citation=_MNIST_CITATION,
        ),
    )
}

# Random crops and horizontal flips are label-preserving for natural images only: a mirrored
# digit or a shifted 8x8 digit is a different (or cut-off) glyph.
AUGMENTABLE = frozenset({"cifar10"})


def names() -> tuple[str, ...]:
    """Returns the names accepted by `load` and `info`, in registry order."""
    return tuple(_REGISTRY)


def info(name: str) -> DatasetInfo:
    """Returns the `DatasetInfo` of a dataset.

    Args:
        name: One of `names()`.

    Raises:
        ValueError: If ``name`` is not a known dataset.
    """
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        raise ValueError(
            f"Unknown dataset name={name!r}. Valid choices: {', '.join(names())}."
        ) from None
