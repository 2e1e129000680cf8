"""Packing a dataset into shards (`tn_keras.datasets.shards`), as `tn_keras.datasets.load`
finds it: ``tn-keras data pack NAME --out DIR --max-shard-mb N``.

Imports run one way: this module reads the dataset through the loader
(`tn_keras.datasets.loader.source_arrays`) and writes it with `tn_keras.datasets.shards`; the
loader imports only the shard reader.
"""
from __future__ import annotations

import numpy as np

from tn_keras.datasets import loader
from tn_keras.datasets import shards
from tn_keras.datasets.codecs import DEFAULT_CODEC

#: Datasets `load` makes in memory, never from a data folder.
DERIVED = {"digits": "it ships inside scikit-learn",
           "mnist7x7": "it is computed from mnist; pack mnist"}


def pack(name: str, out: str, max_shard_mb: float, data_dir: str | None = None,
         offline: bool | None = None, overwrite: bool = False,
         codec: str = DEFAULT_CODEC) -> str:
    """Writes every array of dataset ``name`` as shards into ``<out>/<name>.shards/``.

    The dataset is found as `tn_keras.datasets.load` finds it (``data_dir``, ``TN_KERAS_DATA``,
    ...). The folder is written under a temporary name and renamed when complete; an existing
    one is refused unless ``overwrite``. ``codec`` is a name in
    `tn_keras.datasets.codecs.CODECS`.

    Returns:
        The path of the index file.
    """
    shards.check_write_options(max_shard_mb, codec)  # before the (slow) read of the dataset
    return shards.write(dataset_arrays(name, data_dir, offline), name, out, max_shard_mb,
                        overwrite=overwrite, codec=codec)


def dataset_arrays(name: str, data_dir=None, offline=None) -> dict[str, np.ndarray]:
    """Every array of ``name`` as `load` finds it: both splits, and the lossless mask where the
    source has one."""
    if name in DERIVED:
        raise ValueError(f"{name!r} needs no shards: {DERIVED[name]}.")
    arrays = loader.source_arrays(name, data_dir, offline)
    # `load` adds the lossless rows as a view of the test split; the mask alone is packed.
    return {k: v for k, v in arrays.items() if k not in ("x_test_lossless", "y_test_lossless")}
