"""Fig. S4: the weights of the quadratic terms of mnist7_taylor (Eq. 3) per class.

One scale throughout: the **per-monomial weight** ``Q_ij``, the coefficient with which the
monomial appears in the class's logit,

    f(x) = b + sum_i w_i x_i + sum_i Q_ii x_i^2 + sum_{i<j} Q_ij x_i x_j,

so ``Q_ii = H_ii / 2`` and ``Q_ij = H_ij`` (``i != j``) for the Hessian ``H`` of the logit. The
map is drawn full and symmetric, ``Q_ji = Q_ij`` (each of the 1,225 monomials ``x_i x_j``,
``i <= j``, off the diagonal appears in both triangles); the levels and their counts are over the
1,225 monomials.

The coefficients come from `tn_keras.interpret.taylor_expansion` of the whole model about the
zero image, in **raw pixels** (0..255): the model's Normalization is folded in. It divides by
one ``std`` for every pixel, so the quadratic weight is the layer's own ``Q_ij / std^2`` and the
levels (relative to the class's largest weight) are those of the layer's weights.
"""
from __future__ import annotations

import numpy as np

from tn_keras.figures import style

# Upper bounds of the five magnitude levels, as fractions of each class's largest |Q_ij|. The
# supplement draws five levels but does not give their bounds: these are the project's.
LEVEL_EDGES = (0.01, 0.05, 0.2, 0.5, 1.0)
LEVEL_NAMES = ("< 1 %", "1-5 %", "5-20 %", "20-50 %", ">= 50 %")
# Darker is larger, as in the paper; the lowest level is a visible pale yellow-green, never the
# white of the page.
LEVEL_COLOURS = ("#edf8b1", "#7fcdbb", "#41b6c4", "#2c7fb8", "#253494")
SIDE = 7  # 7x7 images: pixel index i = 7 row + column


def monomial_weights(hessian):
    """``(classes, n, n)`` Hessians -> the symmetric map of per-monomial weights ``Q``.

    ``Q_ii = H_ii / 2`` (the weight of ``x_i^2``); ``Q_ij = Q_ji = H_ij`` for ``i != j`` (the
    weight of the monomial ``x_i x_j``, which the symmetric form ``1/2 x^T H x`` splits in two).
    """
    hessian = np.asarray(hessian, dtype=np.float64)
    diagonal = np.arange(hessian.shape[-1])
    weights = hessian.copy()
    weights[:, diagonal, diagonal] /= 2.0
    return weights


def magnitude_levels(weights):
    """``(classes, n, n)`` -> integer level 0..4 of every weight, relative per class.

    Level ``l`` holds ``LEVEL_EDGES[l-1] <= |Q| / max|Q| < LEVEL_EDGES[l]`` (level 4: from 0.5
    up to and including 1).
    """
    scale = np.abs(weights).max(axis=(1, 2), keepdims=True)
    relative = np.abs(weights) / np.where(scale > 0, scale, 1.0)
    return np.searchsorted(np.asarray(LEVEL_EDGES[:-1]), relative, side="right")


def level_counts(levels):
    """``(classes, 5)``: how many of the ``n (n + 1) / 2`` monomials (``i <= j``) per level."""
    rows, cols = np.triu_indices(levels.shape[-1])
    return np.stack([np.bincount(level[rows, cols], minlength=len(LEVEL_NAMES))
                     for level in levels])


def make(folder, model=None):
    """Writes fig_s4_quadratic / fig_s4_linear (PNG, SVG) and their CSVs; returns records."""
    from tn_keras import interpret
    from tn_keras import zoo

    model = model or zoo.load("mnist7_taylor", compile=False)
    expansion = interpret.taylor_expansion(model, about="zero", order=2)
    weights = monomial_weights(expansion.hessian)
    classes, n = weights.shape[0], weights.shape[1]
    linear = expansion.gradient.reshape(-1, SIDE, SIDE)
    levels = magnitude_levels(weights)
    counts = level_counts(levels)
    monomials = n * (n + 1) // 2
    quad = style.Figure(
        "fig_s4_quadratic", "Fig. S4: the weights of the quadratic terms x_i x_j per class",
        "Paper (supplement, Fig. S4): for each class of the Eq. (3) classifier on 7x7 MNIST, "
        "the weight of each quadratic term x_i x_j, with i on the abscissa and j on the "
        "ordinate (the linear pixel indices), in five magnitude levels, darker for larger, and "
        "an inset counting the weights per level. Measured: the shipped mnist7_taylor's "
        "per-monomial weights Q_ij (Q_ii the weight of x_i^2; for i < j, Q_ij the weight of "
        "the monomial x_i x_j, drawn at (i, j) and at (j, i): the map is symmetric), from "
        "tn_keras.interpret.taylor_expansion about the zero image in raw 0..255 pixels (the "
        "layer's weights divided by std^2, which leaves the levels unchanged). Levels relative "
        "to the class's largest |Q_ij|: < 1 %, 1-5 %, 5-20 %, 20-50 %, >= 50 % (bounds chosen "
        f"here; the supplement does not give them). Inset: the {monomials:,} monomials "
        "(i <= j) per level; it covers part of the upper triangle, whose mirror image is "
        "below the diagonal. Pixel index = 7 row + column.")
    _draw_quadratic(folder, levels, counts, quad)
    rows, cols = np.triu_indices(n)
    style.write_csv(folder, "fig_s4_quadratic.csv", ["class", "i", "j", "weight", "level"],
                    [(c, i, j, weights[c, i, j], levels[c, i, j]) for c in range(classes)
                     for i, j in zip(rows, cols)], quad)
    style.write_csv(folder, "fig_s4_counts.csv", ["class", "level", "range", "count"],
                    [(c, lv, LEVEL_NAMES[lv], counts[c, lv]) for c in range(classes)
                     for lv in range(len(LEVEL_NAMES))], quad)
    lin = style.Figure(
        "fig_s4_linear", "Companion to Fig. S4: the linear coefficients per class",
        "Not in the supplement, which shows only the quadratic weights: the order-1 "
        "coefficients of the shipped mnist7_taylor about the zero image in raw pixels (per "
        "0..255 grey level; red raises the class's logit, blue lowers it), one colour scale "
        "per class, shown beside Fig. S4 so the whole of Eq. (3) is visible.")
    _draw_linear(folder, linear, lin)
    style.write_csv(folder, "fig_s4_linear.csv", ["class", "row", "col", "coefficient"],
                    [(c, r, q, linear[c, r, q]) for c in range(classes) for r in range(SIDE)
                     for q in range(SIDE)], lin)
    return [quad, lin]


def _draw_quadratic(folder, levels, counts, record):
    from matplotlib.colors import ListedColormap

    plt = style.pyplot()
    fig, axes = plt.subplots(2, 5, figsize=(13.5, 6.8))
    cmap = ListedColormap(LEVEL_COLOURS)
    n = levels.shape[-1]
    ticks = [0, 12, 24, 36, 48] if n == 49 else [0, n - 1]
    for c, ax in enumerate(axes.flat):
        ax.imshow(levels[c], cmap=cmap, vmin=-0.5, vmax=len(LEVEL_NAMES) - 0.5,
                  interpolation="nearest")
        ax.set_title(f"class {c}")
        ax.set_xticks(ticks)
        ax.set_yticks(ticks)
        ax.set_xlabel("i")
        ax.set_ylabel("j", rotation=0, labelpad=8)
        _inset_histogram(ax, counts[c])
    handles = [plt.Rectangle((0, 0), 1, 1, color=col, ec="0.5") for col in LEVEL_COLOURS]
    fig.legend(handles, [f"|Q_ij| {name} of the class's largest" for name in LEVEL_NAMES],
               loc="lower center", ncol=5, frameon=False)
    fig.suptitle("mnist7_taylor: weight Q_ij of each monomial x_i x_j (raw pixels), "
                 "five magnitude levels")
    fig.tight_layout(rect=(0, 0.05, 1, 0.97), h_pad=1.5)
    style.save(fig, folder, record.name, record)


def _inset_histogram(ax, counts):
    """The paper's inset: one bar per level, its count above it, in the map's top right."""
    inset = ax.inset_axes([0.5, 0.56, 0.47, 0.41])
    inset.bar(range(len(counts)), counts, color=LEVEL_COLOURS, edgecolor="0.3", linewidth=0.4)
    top = max(int(counts.max()), 1)
    for level, count in enumerate(counts):
        inset.text(level, count + 0.03 * top, str(int(count)), ha="center", va="bottom",
                   fontsize=5)
    inset.set_ylim(0, 1.3 * top)
    inset.set_xticks([])
    inset.set_yticks([])
    inset.set_facecolor("white")
    inset.patch.set_alpha(0.92)
    for spine in inset.spines.values():
        spine.set_linewidth(0.4)


def _draw_linear(folder, linear, record):
    plt = style.pyplot()
    fig, axes = plt.subplots(2, 5, figsize=(11, 4.8))
    for c, ax in enumerate(axes.flat):
        bound = float(np.abs(linear[c]).max()) or 1.0
        image = ax.imshow(linear[c], cmap="RdBu_r", vmin=-bound, vmax=bound)
        ax.set_title(f"class {c}")
        ax.set_xticks([])
        ax.set_yticks([])
        fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, format="%.1e")
    fig.suptitle("mnist7_taylor: order-1 coefficients about the zero image (raw pixels)")
    fig.tight_layout()
    style.save(fig, folder, record.name, record)
