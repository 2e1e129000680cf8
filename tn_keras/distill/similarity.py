"""Eq. (S3) of the supplement: within-class cosine similarity ``s`` and squared distance ``d``.

For class ``i`` at distillation level ``alpha`` with ``n = n_{alpha,i}`` images, each image is
flattened to a vector and normalised to unit length, ``<X_m|X_m> = 1``; then

    s_i = 1/tau * sum_{m != n} <X_m | X_n>
    d_i = 1/tau * sum_{m != n} <X_m - X_n | X_m - X_n>,        tau = n (n - 1)

i.e. means over the ``n (n - 1)`` *ordered* pairs (the supplement prints tau inconsistently;
this is the reading under which both are means). Expanding the square for unit vectors,
``<X_m - X_n|X_m - X_n> = 2 - 2 <X_m|X_n>`` term by term, hence ``d = 2 - 2 s`` exactly.

Both are computed in O(n D) instead of O(n^2 D) from the sum ``S = sum_m X_m``:

    sum_{m != n} <X_m|X_n> = |S|^2 - sum_m |X_m|^2
    sum_{m != n} |X_m - X_n|^2 = 2 n sum_m |X_m|^2 - 2 |S|^2

(``d`` is evaluated from its own identity, not as ``2 - 2 s``, so the test of ``d = 2 - 2 s`` is
a real check of the code.) A class with fewer than two images has no pairs: ``s = d = NaN``.
"""
from __future__ import annotations

import math

import numpy as np


def _unit_rows(images: np.ndarray) -> np.ndarray:
    flat = np.asarray(images, dtype=np.float64).reshape(len(images), -1)
    norms = np.linalg.norm(flat, axis=1, keepdims=True)
    if np.any(norms == 0):
        # An all-black image has no direction; Eq. (S3) is undefined for it.
        raise ValueError(f"{int(np.sum(norms == 0))} image(s) are all zero: they cannot be "
                         "normalised to unit length for Eq. (S3).")
    return flat / norms


def class_similarity(images: np.ndarray) -> tuple[float, float]:
    """``(s, d)`` of Eq. (S3) for the images of one class, shape ``(n, ...)``."""
    n = len(images)
    if n < 2:
        return math.nan, math.nan
    x = _unit_rows(images)
    total = x.sum(axis=0)
    sum_sq_norms = float(np.sum(x * x))  # = n for unit rows, kept general for rounding
    total_sq = float(total @ total)
    pairs = n * (n - 1)
    s = (total_sq - sum_sq_norms) / pairs
    d = (2.0 * n * sum_sq_norms - 2.0 * total_sq) / pairs
    return s, d


def similarity(x: np.ndarray, y: np.ndarray) -> dict[int, dict[str, float]]:
    """Eq. (S3) for every class present in ``y``.

    Args:
        x: images ``(N, ...)`` (any numeric dtype; flattened per image).
        y: integer labels ``(N,)``.

    Returns:
        ``{class: {"s": s_i, "d": d_i, "n": n_i}}``, classes in increasing order. ``s`` and
        ``d`` are NaN for a class with a single image.
    """
    x = np.asarray(x)
    y = np.asarray(y).reshape(-1)
    if len(x) != len(y):
        raise ValueError(f"similarity: {len(x)} images but {len(y)} labels.")
    table = {}
    for c in np.unique(y):
        s, d = class_similarity(x[y == c])
        table[int(c)] = {"s": s, "d": d, "n": int(np.sum(y == c))}
    return table
