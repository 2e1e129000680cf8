"""Null curves for Eq. (S3): what the within-class similarity ``s`` does with no network at all.

Figs. S5/S6 show ``s`` (`tn_keras.distill.similarity`) rising level after level. Two
references, computed with NumPy only on the same level 0 ``D^(0)`` and with the same number of
images per class at every level, say how much of that rise the network is needed for:

**Averaging only.** ``A^(0) = D^(0)``; ``A^(a)`` has one image per random group of ``A^(a-1)``,
the group's pixel mean,

    x_g^(a) = 1/|G| sum_{m in G} x_m^(a-1),

with the cascade's own groups (`tn_keras.distill.groups.make_groups`, seeded by ``(seed, a)``:
for the same seed and level 0, the very groups the distillation used). With groups of ``k``,
an image of level ``a`` is the mean of ``K = k^a`` distinct real images of its class (up to the
``n mod k`` left over, which join a group), and two images of one level share none. Write a
class's real images as ``x = mu + e``, with mean ``mu`` and spread ``V = E|e|^2``; the mean of
``K`` of them has ``E|x|^2 = |mu|^2 + V/K`` and two such means have ``E<x, x'> = |mu|^2``, so
their cosine is roughly

    s^(a) ~ |mu|^2 / (|mu|^2 + V / k^a)  ->  1   as a grows,

(roughly: Eq. S3 normalises each image before the product). Averaging alone drives ``s``
towards 1, whatever the network does.

**Random real.** ``R^(a)`` has, for every class, as many images as the level has, drawn at
random without replacement from the real training images (seeded by ``(seed, a)``;
``R^(0) = D^(0)``). ``s`` is a mean over pairs, and the mean over pairs of random images does
not depend on how many are drawn: ``E[s(R^(a))]`` is the class's mean pairwise cosine at every
level, and only its spread grows as the levels shrink. This curve is flat.

A distilled curve that lies on the averaging-only one says no more than averaging does; the
distance between the two is what the network adds to (or takes from) ``s``.

Both nulls are kept in float: the averaging null is the mean and nothing else. (The cascade
rounds every level to uint8; doing the same here moves the mean ``s`` by 5e-5 at most on the
level 0 of Figs. S5/S6, docs/distillation.md.)
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from tn_keras.distill.checks import check_plan
from tn_keras.distill.groups import make_groups
from tn_keras.distill.groups import segment_mean
from tn_keras.distill.similarity import similarity

# The curves' keys (in the figure's JSON) and their legend labels, in drawing order.
DISTILLED = "distilled"
AVERAGING = "averaging_only"
RANDOM_REAL = "random_real"
LABELS = {DISTILLED: "distilled",
          AVERAGING: "averaging only (means of random groups, no network)",
          RANDOM_REAL: "random real (as many real images per class)"}

# The random-real draws get a stream of their own: make_groups uses ([seed, a]) and the
# matching methods ([seed, a, 17]), so a draw is never correlated with the cascade's groups.
_RANDOM_REAL_STREAM = 31


def _check_seed(seed):
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be an integer >= 0; got {seed!r}.")


def _check_pair(x, y, what: str):
    x, y = np.asarray(x), np.asarray(y).reshape(-1)
    if len(x) != len(y):
        raise ValueError(f"{what}: {len(x)} images but {len(y)} labels.")
    return x, y.astype(np.int64)


def averaging_levels(x0, y0, levels: int, group_size: int = 2, seed: int = 0):
    """``[(x, y)]`` for levels ``0..levels``: level ``a`` is the pixel means of the cascade's
    random groups of level ``a - 1`` (float32; level 0 is ``x0`` as given)."""
    _check_seed(seed)
    x, y = _check_pair(x0, y0, "x0, y0")
    check_plan(y, levels, group_size, None)
    out = [(x, y)]
    for a in range(1, levels + 1):
        x, y = out[-1]
        group_of, labels = make_groups(y, group_size, seed, a)
        out.append((segment_mean(x, group_of, len(labels)), labels))
    return out


def random_real_draw(x, y, counts: dict, seed: int, level: int):
    """``counts[c]`` images of every class ``c``, drawn without replacement from ``(x, y)``,
    seeded by ``(seed, level)``; returned class by class."""
    _check_seed(seed)
    x, y = _check_pair(x, y, "x, y")
    rng = np.random.default_rng([seed, level, _RANDOM_REAL_STREAM])
    chosen = []
    for c in sorted(counts):
        pool = np.flatnonzero(y == c)
        if not 0 <= counts[c] <= len(pool):
            raise ValueError(f"counts: class {c} asks for {counts[c]} images; the pool has "
                             f"{len(pool)}.")
        chosen.append(rng.choice(pool, size=counts[c], replace=False))
    index = np.concatenate(chosen) if chosen else np.zeros(0, np.int64)
    return x[index], y[index]


def _counts(y) -> dict:
    classes, n = np.unique(y, return_counts=True)
    return {int(c): int(k) for c, k in zip(classes, n)}


def null_levels(x0, y0, pool, levels: int, group_size: int = 2, seed: int = 0):
    """Both nulls' images: ``{AVERAGING: [(x, y), ...], RANDOM_REAL: [(x, y), ...]}``, levels
    ``0..levels``, each level with the averaging null's (= the cascade's) counts per class.

    Args:
        x0, y0: level 0, the real subset the cascade starts from (shared by both nulls).
        pool: ``(x, y)``, the real training images the random-real null draws from.
    """
    if not (isinstance(pool, (tuple, list)) and len(pool) == 2):
        raise ValueError(f"pool must be a pair (x, y) of real training images; got "
                         f"{type(pool).__name__}.")
    averaged = averaging_levels(x0, y0, levels, group_size, seed)
    real = [averaged[0]] + [random_real_draw(*pool, _counts(y), seed, a)
                            for a, (_, y) in enumerate(averaged) if a > 0]
    return {AVERAGING: averaged, RANDOM_REAL: real}


def null_curves(x0, y0, pool, levels: int, group_size: int = 2, seed: int = 0):
    """Eq. (S3) of both nulls: ``{AVERAGING: table, RANDOM_REAL: table}``, each table
    ``{level: {class: {"s", "d", "n"}}}`` as `tn_keras.distill.similarity_by_level` gives for
    the cascade (see `null_levels` for the arguments)."""
    return {name: {a: similarity(x, y) for a, (x, y) in enumerate(images)}
            for name, images in null_levels(x0, y0, pool, levels, group_size, seed).items()}


def mean_s(table: dict) -> dict:
    """``{level: mean of s over the classes that have pairs}`` (NaN where none has)."""
    out = {}
    for level, classes in table.items():
        values = [float(v["s"]) for v in classes.values()
                  if v.get("s") is not None and not np.isnan(v["s"])]
        out[level] = float(np.mean(values)) if values else float("nan")
    return out


def last_paired_level(curves: dict) -> Optional[int]:
    """The deepest level at which every curve still has a mean ``s`` (two images per class or
    more), or None."""
    means = [mean_s(table) for table in curves.values()]
    levels = sorted(set.intersection(*(set(m) for m in means)))
    paired = [a for a in levels if not any(np.isnan(m[a]) for m in means)]
    return paired[-1] if paired else None
