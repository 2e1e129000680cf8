"""Calibration images for full-integer quantisation.

The int8 ranges of every activation are set from these images, so they must look like what the
deployed model will see: real raw training images, not noise. By default (``model_name`` names a
zoo model) a fixed, seeded sample of its dataset's training split is used, so the same command
always produces the same quantised file. A distilled level (``representative_data`` = the path
of a ``level_<a>`` folder written by `tn_keras.distill`) is the small, shareable alternative: a
few images per class that stand for the training set, checked against their sha256 first.
"""
import os
import re
from typing import Optional, Tuple

import numpy as np

from tn_keras.datasets.distilled_levels import MANIFEST
from tn_keras.datasets.distilled_levels import load_level
from tn_keras.export.signature import as_image_batch
from tn_keras.utils.files import sha256_file

DEFAULT_NUM_IMAGES = 500
DEFAULT_SEED = 0


def calibration_images(
    image_shape: tuple,
    representative_data=None,
    model_name: Optional[str] = None,
    data_dir: Optional[str] = None,
    num_images: int = DEFAULT_NUM_IMAGES,
    seed: int = DEFAULT_SEED,
    format: str = "tflite_int8",
) -> Tuple[np.ndarray, dict]:
    """The calibration images and a record of where they came from (for the manifest).

    Args:
        image_shape: the model's per-image input shape ``(H, W, C)``.
        representative_data: raw images given by the caller, used as they are; or the path of
            a distilled level folder (``<export_dir>/level_<a>``), whose images are used.
        model_name: a zoo model name: ``num_images`` images of its dataset's ``train`` split,
            drawn without replacement with ``numpy.random.default_rng(seed)``.
        data_dir: the dataset folder for `tn_keras.datasets.load`.

    Raises:
        ValueError: neither ``representative_data`` nor a zoo ``model_name`` is given.
    """
    if isinstance(representative_data, (str, os.PathLike)):
        return distilled_level_images(representative_data, image_shape)
    if representative_data is not None:
        images = as_image_batch(representative_data, image_shape, "representative_data")
        return images, {"images_from": "representative_data (caller-supplied)",
                        "num_images": int(len(images))}
    if model_name is None:
        raise ValueError(
            f"format={format!r} needs calibration images for quantisation: pass "
            "representative_data=<array of raw training images, shape (N, H, W, C)>, or "
            f"model_name=<zoo model name> to use {num_images} images of its dataset's training "
            "split."
        )
    from tn_keras import datasets
    from tn_keras.zoo.registry import get_spec

    dataset = get_spec(model_name).dataset
    x, _ = datasets.load(dataset, "train", data_dir)
    rng = np.random.default_rng(seed)
    index = np.sort(rng.choice(len(x), size=min(num_images, len(x)), replace=False))
    images = as_image_batch(x[index], image_shape, f"the {dataset} training images")
    return images, {
        "images_from": f"{dataset} train split",
        "num_images": int(len(images)),
        "seed": int(seed),
        "sampling": "numpy.random.default_rng(seed).choice(len(train), n, replace=False)",
    }


def distilled_level_images(level_path, image_shape: tuple) -> Tuple[np.ndarray, dict]:
    """The images of a distilled level folder (sha256-verified) and their record.

    Raises:
        ValueError: the path is not a ``level_<a>`` folder, or its files fail verification.
        FileNotFoundError: the folder does not exist.
    """
    path = os.path.normpath(os.fspath(level_path))
    match = re.fullmatch(r"level_(\d+)", os.path.basename(path))
    if match is None:
        raise ValueError(f"representative_data={os.fspath(level_path)!r}: a path must be a "
                         "distilled level folder named level_<a> (written by tn_keras.distill), "
                         "or pass an array of raw images.")
    if not os.path.isdir(path):
        raise FileNotFoundError(f"No distilled level folder at {path}.")
    x, _ = load_level(os.path.dirname(path), int(match.group(1)), verify=True)
    images = as_image_batch(x, image_shape, f"the images of {path}")
    return images, {
        "images_from": f"distilled level {int(match.group(1))} ({os.path.basename(path)})",
        "num_images": int(len(images)),
        "images_sha256": sha256_file(os.path.join(path, "images.npz")),
        "verification": f"every file's sha256 checked against the level's {MANIFEST}",
    }


def real_test_images(model_name: Optional[str], image_shape: tuple, num_images: int,
                     data_dir: Optional[str] = None):
    """``(the first num_images test images of model_name's dataset, a description)`` when that
    dataset is on this machine, else None. Never downloads (``offline=True``): an export must
    not wait on the network for a check. None too for a model whose input is not the
    dataset's image shape (a zoo architecture rebuilt for other images)."""
    if model_name is None:
        return None
    from tn_keras import datasets
    from tn_keras.zoo.registry import get_spec

    dataset = get_spec(model_name).dataset
    try:
        x, _ = datasets.load(dataset, "test", data_dir, offline=True)
    except datasets.DatasetNotFoundError:
        return None
    if tuple(x.shape[1:]) != tuple(image_shape):
        return None
    return (as_image_batch(x[:num_images], image_shape, f"the {dataset} test images"),
            f"the first {min(num_images, len(x))} {dataset} test images")
