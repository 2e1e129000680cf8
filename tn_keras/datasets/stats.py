"""Recomputes the per-channel statistics stored in `registry`.

Usage::

    TN_KERAS_DATA=/path/to/data python -m tn_keras.datasets.stats

Prints, for every dataset whose data can be found (``digits`` always), the mean and
population std per channel of the training split in 0..255 pixel units.
"""
from __future__ import annotations

import sys

import numpy as np

from tn_keras.datasets.errors import DatasetNotFoundError
from tn_keras.datasets.loader import load
from tn_keras.datasets.registry import names


def channel_stats(x: np.ndarray) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and population std of ``(N, H, W, C)`` images, in float64."""
    flat = x.reshape(-1, x.shape[-1]).astype(np.float64)
    return tuple(flat.mean(axis=0).tolist()), tuple(flat.std(axis=0).tolist())


def compute(name: str, data_dir: str | None = None) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Statistics of the training split of ``name``, loaded with `load` (offline)."""
    x, _ = load(name, "train", data_dir=data_dir, offline=True)
    return channel_stats(x)


def _rounded(values: tuple[float, ...]) -> tuple[float, ...]:
    return tuple(round(v, 5) for v in values)


def main() -> int:
    """Prints the statistics as registry-ready tuples; returns 1 if a dataset was missing."""
    status = 0
    for name in names():
        try:
            mean, std = compute(name)
        except DatasetNotFoundError:
            print(f"{name}: not found (set TN_KERAS_DATA)", file=sys.stderr)
            status = 1
            continue
        print(f"{name:14s} mean={_rounded(mean)} std={_rounded(std)}")
    return status


if __name__ == "__main__":
    sys.exit(main())
