"""Reading an already prepared tensorflow-datasets directory, never downloading.

`tfds.load` tries to download and prepare a missing dataset, which hangs for minutes
offline. So tfds is only imported and called (with ``download=False``) when the prepared
folder ``<TFDS_DATA_DIR>/<name>/<version>/dataset_info.json`` is already on disk.
"""
from __future__ import annotations

import glob
import os

import numpy as np


def tfds_root() -> str:
    """The tensorflow-datasets data directory: ``$TFDS_DATA_DIR`` or ``~/tensorflow_datasets``."""
    return os.environ.get("TFDS_DATA_DIR") or os.path.join(
        os.path.expanduser("~"), "tensorflow_datasets"
    )


def prepared_dir(name: str, root: str) -> str | None:
    """Returns the newest prepared version folder of ``name`` under ``root``, or None (tfds names
    mnist, fashion_mnist and cifar10 as we do)."""
    infos = sorted(glob.glob(os.path.join(root, name, "*", "dataset_info.json")))
    return os.path.dirname(infos[-1]) if infos else None


def read_tfds(name: str, root: str) -> dict[str, np.ndarray]:
    """Loads the train and test splits of a prepared tfds dataset as numpy arrays."""
    import tensorflow_datasets as tfds  # Slow import; only paid when a prepared folder exists.

    arrays = {}
    for split in ("train", "test"):
        x, y = tfds.as_numpy(
            tfds.load(name, split=split, data_dir=root, download=False,
                      batch_size=-1, as_supervised=True)
        )
        arrays[f"x_{split}"], arrays[f"y_{split}"] = x, y
    return arrays
