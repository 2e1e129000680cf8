"""Calibration images for full-integer quantisation.

The int8 ranges of every activation are set from these images, so they must look like what the
deployed model will see: real raw training images, not noise. By default (``source`` names a zoo
model) a fixed, seeded sample of its dataset's training split is used, so the same command
always produces the same quantised file.
"""
from typing import Optional, Tuple

import numpy as np

from tn_keras.export.signature import as_image_batch

DEFAULT_NUM_IMAGES = 500
DEFAULT_SEED = 0


def calibration_images(
    image_shape: tuple,
    representative_data=None,
    source: Optional[str] = None,
    data_dir: Optional[str] = None,
    num_images: int = DEFAULT_NUM_IMAGES,
    seed: int = DEFAULT_SEED,
    format: str = "tflite_int8",
) -> Tuple[np.ndarray, dict]:
    """The calibration images and a record of where they came from (for the manifest).

    Args:
        image_shape: the model's per-image input shape ``(H, W, C)``.
        representative_data: raw images given by the caller; used as they are.
        source: a zoo model name: ``num_images`` images of its dataset's ``train`` split,
            drawn without replacement with ``numpy.random.default_rng(seed)``.
        data_dir: the dataset folder for `tn_keras.datasets.load`.

    Raises:
        ValueError: neither ``representative_data`` nor a zoo ``source`` is given.
    """
    if representative_data is not None:
        images = as_image_batch(representative_data, image_shape, "representative_data")
        return images, {"source": "representative_data (caller-supplied)",
                        "num_images": int(len(images))}
    if source is None:
        raise ValueError(
            f"format={format!r} needs calibration images for quantisation: pass "
            "representative_data=<array of raw training images, shape (N, H, W, C)>, or "
            f"source=<zoo model name> to use {num_images} images of its dataset's training "
            "split."
        )
    from tn_keras import datasets
    from tn_keras.zoo.registry import get_spec

    dataset = get_spec(source).dataset
    x, _ = datasets.load(dataset, "train", data_dir)
    rng = np.random.default_rng(seed)
    index = np.sort(rng.choice(len(x), size=min(num_images, len(x)), replace=False))
    images = as_image_batch(x[index], image_shape, f"the {dataset} training images")
    return images, {
        "source": f"{dataset} train split",
        "num_images": int(len(images)),
        "seed": int(seed),
        "sampling": "numpy.random.default_rng(seed).choice(len(train), n, replace=False)",
    }
