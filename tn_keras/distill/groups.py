"""Which images make which: level 0's real subset, and the random groups of every level.

Level 0 is a real subset ``D^(0)``. To build ``D^(a)`` from ``D^(a-1)``, each class's ``n``
images are permuted at random (seeded by ``(seed, a)``, so a resumed run draws the same groups)
and cut into ``g = n // k`` groups of ``k`` images; the ``n mod k`` left over join the last
group, so every image is used. Each level thus divides the images per class by ``k`` (rounding
down) until one is left; the number of possible levels is fixed by the smallest class.
"""
from __future__ import annotations

from typing import Optional

import numpy as np


def starting_subset(x: np.ndarray, y: np.ndarray, per_class: Optional[int], seed: int):
    """Level 0: ``per_class`` images of every class drawn without replacement (seed), or all.

    Returned sorted by class, then by original index, so level 0 is a stable function of
    ``(x, y, per_class, seed)``.
    """
    rng = np.random.default_rng([seed, 0])
    chosen = []
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        if per_class is not None:
            idx = np.sort(rng.choice(idx, size=per_class, replace=False))
        chosen.append(idx)
    idx = np.concatenate(chosen)
    return x[idx], y[idx]


def make_groups(y: np.ndarray, group_size: int, seed: int, level: int):
    """Random groups of ``group_size`` within each class, for building ``level``.

    Returns ``(group_of, group_labels)``: ``group_of[j]`` is the group of image ``j`` and
    ``group_labels[g]`` the class of group ``g``; groups are numbered class by class.
    """
    rng = np.random.default_rng([seed, level])
    group_of = np.empty(len(y), dtype=np.int64)
    labels = []
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        n_groups = len(idx) // group_size
        # The n mod k left over join the last group rather than being dropped.
        local = np.minimum(np.arange(len(idx)) // group_size, n_groups - 1)
        group_of[idx] = len(labels) + local
        labels.extend([int(c)] * n_groups)
    return group_of, np.asarray(labels, dtype=np.int64)


def first_members(group_of: np.ndarray, count: int) -> np.ndarray:
    """The index of the first image of each of the ``count`` groups (a real image, sharper than
    the group's mean)."""
    first = np.full(count, -1)
    for j in range(len(group_of) - 1, -1, -1):
        first[group_of[j]] = j
    return first


def group_members(group_of: np.ndarray, count: int, size: int) -> np.ndarray:
    """``(count, size)`` image indices: each group's members in order, repeated cyclically when
    the group has fewer than ``size`` (a multi-formation slot's ``f^2`` starting tiles)."""
    members = [[] for _ in range(count)]
    for j, g in enumerate(group_of):
        members[g].append(j)
    return np.asarray([[m[i % len(m)] for i in range(size)] for m in members], dtype=np.int64)


def segment_mean(values: np.ndarray, segments: np.ndarray, count: int) -> np.ndarray:
    """Mean of ``values`` rows per segment id ``0..count-1`` (float32; float64 sums)."""
    out = np.zeros((count,) + values.shape[1:], dtype=np.float64)
    np.add.at(out, segments, values)
    sizes = np.bincount(segments, minlength=count).reshape((count,) + (1,) * (values.ndim - 1))
    return (out / sizes).astype(np.float32)


def group_start(x: np.ndarray, group_of: np.ndarray, count: int, init: str) -> np.ndarray:
    """Where each group's optimisation starts: its pixel mean or its first member (float32)."""
    x = np.asarray(x, dtype=np.float32)
    if init == "mean":
        return segment_mean(x, group_of, count)
    return x[first_members(group_of, count)]
