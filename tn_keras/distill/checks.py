"""Every check `distill` makes before any work: the images, the labels and the level plan."""
from __future__ import annotations

from typing import Optional

import numpy as np

from tn_keras.distill.config import PIXEL_MAX
from tn_keras.distill.config import PIXEL_MIN


def validate_data(x, y, num_classes: Optional[int] = None) -> tuple[np.ndarray, np.ndarray]:
    """Check images and labels; return ``(x, y)`` as arrays (``y`` int64).

    Raises ValueError for: images not (N, H, W, C); labels not 1-D, of another length, not
    integer-valued, or outside ``[0, num_classes)``; NaN/inf pixels or pixels outside 0..255;
    float images that look scaled to 0..1 (all in [0, 1], some strictly between).
    """
    x = np.asarray(x)
    y = np.asarray(y)
    if x.ndim != 4:
        raise ValueError(f"Images must be (N, H, W, C); got shape {x.shape}.")
    if not (np.issubdtype(x.dtype, np.integer) or np.issubdtype(x.dtype, np.floating)):
        raise ValueError(f"Images must be numeric; got dtype {x.dtype}.")
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise ValueError(f"Labels must be a 1-D array of class indices; got shape {y.shape} "
                         "(one-hot labels: pass y.argmax(-1)).")
    if len(y) != len(x):
        raise ValueError(f"Labels do not match images: {len(x)} images but {len(y)} labels.")
    if np.issubdtype(y.dtype, np.floating):
        if not np.all(np.isfinite(y)) or np.any(y != np.round(y)):
            raise ValueError(f"Labels must be integer class indices; got dtype {y.dtype} with "
                             "non-integer values.")
    elif not (np.issubdtype(y.dtype, np.integer) or y.dtype == bool):
        raise ValueError(f"Labels must be integer class indices; got dtype {y.dtype}.")
    y = y.astype(np.int64)
    if len(y) and y.min() < 0:
        raise ValueError(f"Labels must be >= 0; found {int(y.min())}.")
    if num_classes is not None and len(y) and y.max() >= num_classes:
        raise ValueError(f"Label {int(y.max())} is out of range: the model has {num_classes} "
                         f"classes (0..{num_classes - 1}).")
    if np.issubdtype(x.dtype, np.floating):
        bad = ~np.isfinite(x)
        if bad.any():
            n_images = int(bad.reshape(len(x), -1).any(axis=1).sum())
            raise ValueError(f"{n_images} image(s) contain NaN or inf pixels.")
    if len(x) and (x.min() < PIXEL_MIN or x.max() > PIXEL_MAX):
        raise ValueError(f"Pixels must be raw values in [0, 255]; found range "
                         f"[{x.min()}, {x.max()}]. (Zoo models normalise inside.)")
    if np.issubdtype(x.dtype, np.floating) and len(x) and x.max() <= 1 and np.any(
            (x > 0) & (x < 1)):
        # The test of `tn_keras.zoo.api.check_pixel_scale`, refused here rather than warned
        # of: levels are written as uint8, so 0..1 images would become black ones.
        raise ValueError(f"Images (x) look scaled to 0..1 (values {float(x.min()):.3g}.."
                         f"{float(x.max()):.3g}), but distill takes raw pixels 0..255 (zoo "
                         "models standardise inside): multiply them by 255 first.")
    return x, y


def level_sizes(n: int, group_size: int, levels: int) -> list[int]:
    """Images per class at levels 0..levels, starting from ``n``: ``n_a = n_{a-1} // k``."""
    sizes = [n]
    for _ in range(levels):
        sizes.append(sizes[-1] // group_size)
    return sizes


def max_levels(n: int, group_size: int) -> int:
    """How many levels ``n`` images of a class allow: while at least one group can be formed."""
    count = 0
    while n >= group_size:
        n //= group_size
        count += 1
    return count


def check_plan(y: np.ndarray, levels: int, group_size: int, per_class: Optional[int]):
    """Raise ValueError unless every class can go through ``levels`` levels."""
    if int(group_size) != group_size or group_size < 2:
        raise ValueError(f"group_size must be an integer >= 2; got {group_size!r}.")
    if int(levels) != levels or levels < 0:
        raise ValueError(f"levels must be an integer >= 0; got {levels!r}.")
    if per_class is not None and (int(per_class) != per_class or per_class < 1):
        raise ValueError(f"per_class must be a positive integer or None; got {per_class!r}.")
    classes, counts = np.unique(y, return_counts=True)
    if len(classes) == 0:
        raise ValueError("No images to distil.")
    for c, n in zip(classes, counts):
        if per_class is not None and n < per_class:
            raise ValueError(f"Class {int(c)} has {int(n)} images, fewer than "
                             f"per_class={per_class}.")
    start = {int(c): int(per_class if per_class is not None else n)
             for c, n in zip(classes, counts)}
    for c, n in start.items():
        if levels >= 1 and n < group_size:
            raise ValueError(f"Class {c} has {n} image(s), fewer than a group "
                             f"(group_size={group_size}).")
        allowed = max_levels(n, group_size)
        if levels > allowed:
            sizes = " -> ".join(str(s) for s in level_sizes(n, group_size, allowed))
            raise ValueError(
                f"levels={levels} is more than the data allows: class {c} starts with {n} "
                f"images, which allow at most {allowed} level(s) with group_size={group_size} "
                f"({sizes})."
            )
    return start
