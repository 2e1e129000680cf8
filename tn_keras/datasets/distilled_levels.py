"""Reading a distilled level folder back: its layout, its verification and its images.

`tn_keras.distill` writes one folder per level of a distillation (`tn_keras.distill.level_files`
writes them):

    export_dir/
      level_<a>/
        images.npz          x: uint8 (N, H, W, C) raw pixels (rounded), y: int64 (N,): the
                            level's data, readable with NumPy alone on any backend
        class_<c>.png       contact sheet of class c
        manifest.json       written last; lists the sha256 of every other file

A level is *complete* when its manifest exists and every file it lists has the recorded sha256.
Reading lives here, below `tn_keras.distill` and `tn_keras.export`, because both read levels:
distill to resume and evaluate them, export to calibrate an int8 model on one
(`tn_keras.export.calibration`); neither may then depend on the other for it.
"""
from __future__ import annotations

import os
from typing import Optional

import numpy as np

from tn_keras import artifacts
from tn_keras.datasets import multi_formation

MANIFEST = artifacts.MANIFEST_NAME
LEVEL_FILE = "images.npz"  # the level's main file: its images and labels


def level_dir(export_dir: str, level: int) -> str:
    """The folder of level ``level`` in ``export_dir``: ``export_dir/level_<level>``."""
    return os.path.join(os.fspath(export_dir), f"level_{int(level)}")


def read_images(folder: str) -> tuple[np.ndarray, np.ndarray]:
    """``(x, y)`` from a level folder's ``images.npz``: the stored images (slots, for a level
    made with multi-formation).

    Raises ValueError naming the file when its images are not raw pixels (`check_pixels`): a
    sha256 only says the file is the one the manifest records, not that it is sound, and a
    NaN image would calibrate an int8 export to a scale of 0.0 without a word.
    """
    path = os.path.join(folder, LEVEL_FILE)
    with np.load(path) as data:
        x, y = data["x"], data["y"].astype(np.int64)
    check_pixels(x, path)
    return x, y


def check_pixels(x: np.ndarray, path: str) -> None:
    """Refuse images in ``path`` that are not finite raw pixels in 0..255 (distill writes
    uint8), naming the file, how many images are bad and what is valid."""
    if not (np.issubdtype(x.dtype, np.integer) or np.issubdtype(x.dtype, np.floating)):
        raise ValueError(f"{path}: images must be raw pixels 0..255 (uint8, as distill writes "
                         f"them); they are of dtype {x.dtype}.")
    if x.dtype == np.uint8 or x.size == 0:
        return  # what distill writes: nothing to check
    flat = x.reshape(len(x), -1) if x.ndim else x.reshape(1, -1)
    bad = ~np.isfinite(flat) | (flat < 0) | (flat > 255)
    if bad.any():
        n = int(bad.any(axis=1).sum())
        raise ValueError(f"{path}: {n} of {len(flat)} image(s) hold NaN, Inf or pixels outside "
                         "0..255; a level's images must be finite raw pixels 0..255 (uint8, as "
                         "distill writes them).")


def level_formation(folder: str) -> int:
    """The multi-formation factor a level folder's manifest records (1 when none)."""
    manifest = read_manifest(folder) or {}
    return int((manifest.get("algorithm") or {}).get("formation")
               or multi_formation.NO_FORMATION)


def read_training_images(folder: str, decode: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """`read_images`, with a multi-formation level's slots decoded into their ``f^2`` tiles
    each (uint8, full size, `tn_keras.datasets.multi_formation`) unless ``decode=False``."""
    x, y = read_images(folder)
    factor = level_formation(folder) if decode else multi_formation.NO_FORMATION
    return multi_formation.decode_to_uint8(x, y, factor) if factor > 1 else (x, y)


def as_tf_dataset(x: np.ndarray, y: np.ndarray):
    """An unbatched ``tf.data.Dataset`` of ``(image uint8, label int64)`` elements."""
    try:
        import tensorflow as tf
    except ImportError as error:
        raise ImportError("load_level(as_dataset=True) returns a tf.data.Dataset and needs "
                          "TensorFlow; without it, load the arrays (as_dataset=False).") \
            from error
    return tf.data.Dataset.from_tensor_slices((x, y))


def read_manifest(path: str) -> Optional[dict]:
    """A level folder's manifest as a dict; None when it has none or it does not read."""
    try:
        return artifacts.read(os.path.join(path, MANIFEST), kind="distilled_level").to_dict()
    except (FileNotFoundError, artifacts.ManifestError):
        return None


def verify_level(path: str) -> Optional[dict]:
    """The manifest of a complete level folder whose files all verify, else None."""
    try:
        manifest = artifacts.verify(os.path.join(path, MANIFEST))
    except (FileNotFoundError, artifacts.ManifestError):
        return None
    return manifest.to_dict() if manifest.kind == "distilled_level" else None


def load_level(export_dir: str, level: int, as_dataset: bool = False, verify: bool = True,
               decode: bool = True):
    """A level's images and labels.

    Args:
        export_dir: the folder passed to ``distill(export_dir=...)``.
        level: the level number.
        as_dataset: return a ``tf.data.Dataset`` of ``(image uint8, label int64)`` elements
            (unbatched) instead of arrays (needs TensorFlow; the arrays do not).
        verify: check every file's sha256 against the manifest first.
        decode: a level made with multi-formation (``formation=f``) stores slots of ``f^2``
            coarse images; return them decoded, ``f^2`` full-size images a slot (default), or
            the stored slots (False).

    Returns:
        ``(x, y)`` numpy arrays (uint8 images, raw 0..255; int64 labels), or a tf.data.Dataset.
    """
    path = level_dir(export_dir, level)
    if not os.path.isdir(path):
        present = sorted(d for d in os.listdir(export_dir) if d.startswith("level_")) \
            if os.path.isdir(export_dir) else []
        raise FileNotFoundError(f"No level {level} in {export_dir} (present: {present}).")
    if verify and verify_level(path) is None:
        raise ValueError(f"{path} is incomplete or its files do not match their sha256 in "
                         f"{MANIFEST}.")
    x, y = read_training_images(path, decode)
    return as_tf_dataset(x, y) if as_dataset else (x, y)
