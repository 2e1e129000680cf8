"""Datasets computed from other data: ``digits`` (scikit-learn) and ``mnist7x7``."""
from __future__ import annotations

import numpy as np


def digits_arrays() -> dict[str, np.ndarray]:
    """scikit-learn's 8x8 digits rescaled to uint8, with the fixed documented split.

    Values 0..16 become ``round(x * 255 / 16)`` (only x=8 hits a .5, giving 128). The split is
    ``train_test_split(test_size=0.2, stratify=y, random_state=0)``: 1,437 train / 360 test.
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x = np.rint(digits.images * 255.0 / 16.0).astype(np.uint8)[..., np.newaxis]
    y = digits.target.astype(np.int64)
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=0.2, stratify=y, random_state=0
    )
    return {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}


def block_mean_7x7(x: np.ndarray) -> np.ndarray:
    """Averages ``(N, 28, 28, 1)`` uint8 images over 4x4 blocks to float32 ``(N, 7, 7, 1)``.

    The sum of 16 bytes divided by 16 is exactly representable in float32, so the result is
    the exact block mean (deliberately not rounded back to uint8).
    """
    n = len(x)
    sums = x.reshape(n, 7, 4, 7, 4, 1).sum(axis=(2, 4), dtype=np.int32)
    return sums.astype(np.float32) / np.float32(16.0)
