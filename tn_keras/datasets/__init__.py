"""Image classification datasets for tn_keras: loading, statistics, shards and input pipelines
(tf.data under the TensorFlow backend, a NumPy `keras.utils.PyDataset` under the others).

Example::

    from tn_keras import datasets

    x, y = datasets.load("cifar10", "train")            # uint8 (50000, 32, 32, 3), int64
    ds = datasets.make_dataset(x, y, 128, training=True, dataset_name="cifar10", seed=0)
    norm = datasets.normalization_layer("cifar10")      # put first in the model

Where files are looked for is documented in `load`; ``TN_KERAS_DATA`` names the data folder
(which may hold ``tn-keras data pack`` shards, `tn_keras.datasets.shards`) and
``TN_KERAS_OFFLINE=1`` forbids downloads. Nothing here imports TensorFlow unless it is the
Keras backend.
"""
from tn_keras.datasets.errors import DatasetFormatError, DatasetNotFoundError
from tn_keras.datasets.loader import load
from tn_keras.datasets.pipeline import make_dataset, normalization_layer
from tn_keras.datasets.pipeline_options import PipelineConfig
from tn_keras.datasets.registry import DatasetInfo, info, names
from tn_keras.utils.options import deprecated_aliases as _deprecated_aliases

__all__ = [
    "DatasetFormatError",
    "DatasetInfo",
    "DatasetNotFoundError",
    "PipelineConfig",
    "info",
    "load",
    "make_dataset",
    "names",
    "normalization_layer",
]


# The old names (renamed so that every config object ends in Config): importable from here as
# before, with a DeprecationWarning; each is the new class itself.
__getattr__ = _deprecated_aliases(__name__, {
    "PipelineOptions": ("PipelineConfig", PipelineConfig),
})
