"""Structural validation shared by every source: one place decides what a valid split is."""
from __future__ import annotations

import numpy as np

from tn_keras.datasets.errors import DatasetFormatError
from tn_keras.datasets.registry import DatasetInfo

ARRAY_KEYS = ("x_train", "y_train", "x_test", "y_test")


def validate_arrays(arrays: dict[str, np.ndarray], spec: DatasetInfo, origin: str) -> dict:
    """Checks raw train/test arrays against ``spec`` and returns them in canonical form.

    Canonical form: images uint8 ``(N, H, W, C)`` (a missing channel axis of grayscale data is
    added), labels int64 ``(N,)``. The optional ``test_is_lossless`` mask is checked too.

    Args:
        arrays: Mapping with the `ARRAY_KEYS` and optionally ``test_is_lossless``.
        spec: The dataset the arrays claim to be.
        origin: File or source named in error messages.

    Raises:
        DatasetFormatError: On wrong ndim, shape, dtype, count mismatch, out-of-range labels,
            or train/test image shapes that differ.
    """
    def fail(fault: str) -> DatasetFormatError:
        return DatasetFormatError(f"{origin}: {fault} (dataset {spec.name!r}).")

    out = {}
    for split in ("train", "test"):
        x, y = np.asarray(arrays[f"x_{split}"]), np.asarray(arrays[f"y_{split}"])
        if x.dtype != np.uint8:
            raise fail(f"x_{split} has dtype {x.dtype}, expected uint8 pixels 0..255")
        if x.ndim == 3 and spec.image_shape[-1] == 1:
            x = x[..., np.newaxis]
        if x.ndim != 4:
            raise fail(f"x_{split} has ndim {x.ndim} (shape {x.shape}), expected 4 (N, H, W, C)")
        if y.ndim == 2 and y.shape[1] == 1:  # keras.datasets.cifar10 returns (N, 1) labels.
            y = y[:, 0]
        if y.ndim != 1:
            raise fail(f"y_{split} has shape {y.shape}, expected (N,)")
        if not np.issubdtype(y.dtype, np.integer):
            raise fail(f"y_{split} has dtype {y.dtype}, expected integer labels")
        if len(x) != len(y):
            raise fail(f"x_{split} has {len(x)} images but y_{split} has {len(y)} labels")
        if len(x) == 0:
            raise fail(f"x_{split} has no images")
        if len(y) and (y.min() < 0 or y.max() >= spec.num_classes):
            raise fail(
                f"y_{split} has labels in {int(y.min())}..{int(y.max())}, "
                f"expected 0..{spec.num_classes - 1}"
            )
        out[f"x_{split}"], out[f"y_{split}"] = x, y.astype(np.int64)
    if out["x_train"].shape[1:] != out["x_test"].shape[1:]:
        raise fail(
            f"train images {out['x_train'].shape[1:]} and test images "
            f"{out['x_test'].shape[1:]} have different shapes"
        )
    if out["x_train"].shape[1:] != spec.image_shape:
        raise fail(f"images have shape {out['x_train'].shape[1:]}, expected {spec.image_shape}")
    if "test_is_lossless" in arrays:
        mask = np.asarray(arrays["test_is_lossless"])
        if mask.dtype != np.bool_ or mask.shape != (len(out["x_test"]),):
            raise fail(
                f"test_is_lossless has dtype {mask.dtype} and shape {mask.shape}, "
                f"expected bool ({len(out['x_test'])},)"
            )
        out["test_is_lossless"] = mask
    return out
