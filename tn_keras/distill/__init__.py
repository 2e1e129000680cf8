"""Multi-level dataset distillation (paper Supplement E; algorithm: PROJECT, see `algorithm`).

    >>> from tn_keras import distill, zoo
    >>> model = zoo.load("mnist_taylornet")
    >>> levels = distill.distill(model, x, y,
    ...                          settings=distill.DistillConfig(levels=9, per_class=1000),
    ...                          export=distill.LevelExportConfig(directory="out"))
    >>> x3, y3 = distill.load_level("out", 3)
    >>> distill.similarity(x3, y3)            # Eq. (S3): {class: {"s", "d", "n"}}

Modules: `config` (every choice and default, the config objects), `algorithm` (the level
loop), `groups` (level 0 and the random groups), `embedding_matching`,
`distribution_matching` and `class_matching` (the methods; `siamese_augmentation` is DSA for
the last), `pixels` (images as Keras weights), `checks`,
`similarity` (Eq. S3), `null_curves` (what Eq. S3's s does with no network: averaging only,
random real), `level_files` (writing the level folders; `load_level` reads them, from
`tn_keras.datasets.distilled_levels`), `callback`
(`MultiLevelDistillation` for ``model.fit``), `evaluation` (reference classification,
train-from-scratch protocol), `cross_architecture` (a level trained into several networks),
`plot` (s, d vs level; s with its null curves). The shipped distilled sets: `catalogue`
(`load_dataset`, `list_datasets`, `dataset_info`), `datacard`, `shipping` (how they are
made), `tfds_export` (`to_tfds`). Works under every Keras backend; docs/distillation.md has
the guide.
"""
from tn_keras.datasets.distilled_levels import load_level
from tn_keras.datasets.distilled_levels import verify_level
from tn_keras.distill.algorithm import Level
from tn_keras.distill.algorithm import distill
from tn_keras.distill.algorithm import is_monotone
from tn_keras.distill.algorithm import similarity_by_level
from tn_keras.distill.callback import MultiLevelDistillation
from tn_keras.distill.catalogue import dataset_info
from tn_keras.distill.catalogue import list_datasets
from tn_keras.distill.catalogue import load_dataset
from tn_keras.distill.catalogue import verify_dataset
from tn_keras.distill.checks import max_levels
from tn_keras.distill.config import DistillConfig
from tn_keras.distill.config import LevelExportConfig
from tn_keras.distill.evaluation import reference_classification
from tn_keras.distill.evaluation import ScratchTrainingConfig
from tn_keras.distill.evaluation import train_from_scratch
from tn_keras.distill.plot import plot_similarity
from tn_keras.distill.plot import plot_similarity_curves
from tn_keras.distill.similarity import similarity
from tn_keras.distill.tfds_export import to_tfds
from tn_keras.utils.options import deprecated_aliases as _deprecated_aliases

__all__ = [
    "DistillConfig",
    "LevelExportConfig",
    "Level",
    "MultiLevelDistillation",
    "dataset_info",
    "distill",
    "is_monotone",
    "list_datasets",
    "load_dataset",
    "load_level",
    "max_levels",
    "plot_similarity",
    "plot_similarity_curves",
    "reference_classification",
    "similarity",
    "similarity_by_level",
    "to_tfds",
    "train_from_scratch",
    "ScratchTrainingConfig",
    "verify_dataset",
    "verify_level",
]


# The old names (renamed so that every config object ends in Config): importable from here as
# before, with a DeprecationWarning; each is the new class itself.
__getattr__ = _deprecated_aliases(__name__, {
    "DistillSettings": ("DistillConfig", DistillConfig),
    "ExportOptions": ("LevelExportConfig", LevelExportConfig),
    "ScratchProtocol": ("ScratchTrainingConfig", ScratchTrainingConfig),
})
