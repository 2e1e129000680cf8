"""Fig. S4: the quadratic and linear weights of mnist7_taylor (Eq. 3) per class.

The coefficients come from `tn_keras.interpret.taylor_expansion` of the whole model about the
zero image, in **raw pixels** (0..255): the model's Normalization is folded in, so the
quadratic coefficient of ``x_i x_j`` is ``Q_ij / std^2`` and the linear one includes the shift
of the standardisation (``(w + 2 Q z0) / std`` with ``z0 = -mean / std``).
"""
from __future__ import annotations

import numpy as np

from tn_keras.figures import style

# Upper bounds of the five magnitude levels, as fractions of each class's largest |coefficient|.
LEVEL_EDGES = (0.01, 0.05, 0.2, 0.5, 1.0)
LEVEL_NAMES = ("< 1 %", "1-5 %", "5-20 %", "20-50 %", ">= 50 %")
LEVEL_COLOURS = ("#f7f7f7", "#c6dbef", "#6baed6", "#2171b5", "#08306b")


def magnitude_levels(quadratic):
    """``(classes, n, n)`` -> integer level 0..4 of every coefficient (relative per class)."""
    scale = np.abs(quadratic).max(axis=(1, 2), keepdims=True)
    relative = np.abs(quadratic) / np.where(scale > 0, scale, 1.0)
    return np.searchsorted(np.asarray(LEVEL_EDGES[:-1]), relative, side="right")


def make(folder, model=None):
    """Writes fig_s4_quadratic / fig_s4_linear (PNG, SVG) and their CSVs; returns records."""
    from tn_keras import interpret
    from tn_keras import zoo

    model = model or zoo.load("mnist7_taylor", compile=False)
    expansion = interpret.taylor_expansion(model, None, order=2)
    quadratic, linear = expansion.quadratic, expansion.gradient.reshape(-1, 7, 7)
    levels = magnitude_levels(quadratic)
    rows, cols = np.triu_indices(49)
    counts = np.stack([np.bincount(levels[c][rows, cols], minlength=5) for c in range(10)])
    quad = style.Figure(
        "fig_s4_quadratic", "Fig. S4 (quadratic): mnist7_taylor's 49x49 maps per class",
        "Paper: per-class maps of the quadratic weights Q_ij of Eq. (3) on 7x7 MNIST in five "
        "magnitude levels. Measured: the order-2 coefficients of the shipped mnist7_taylor "
        "(tn_keras.interpret.taylor_expansion about the zero image, raw 0..255 pixels: the "
        "Normalization folded in), coloured by |coefficient| relative to the class's largest; "
        "lower triangle shown (the map is symmetric); the counts per level over the 1,225 "
        "monomials x_i x_j (i <= j) are in the upper triangle. Pixel index = 7 row + column.")
    _draw_quadratic(folder, levels, counts, quad)
    style.write_csv(folder, "fig_s4_quadratic.csv", ["class", "i", "j", "coefficient", "level"],
                    [(c, i, j, quadratic[c, i, j], levels[c, i, j]) for c in range(10)
                     for i, j in zip(rows, cols)], quad)
    lin = style.Figure(
        "fig_s4_linear", "Fig. S4 (linear): mnist7_taylor's 7x7 linear maps per class",
        "Paper: the linear weights w of Eq. (3) as 7x7 maps. Measured: the order-1 "
        "coefficients of the shipped mnist7_taylor about the zero image in raw pixels "
        "(per 0..255 grey level; red raises the class's logit, blue lowers it), one colour "
        "scale per class.")
    _draw_linear(folder, linear, lin)
    style.write_csv(folder, "fig_s4_linear.csv", ["class", "row", "col", "coefficient"],
                    [(c, r, q, linear[c, r, q]) for c in range(10) for r in range(7)
                     for q in range(7)], lin)
    return [quad, lin]


def _draw_quadratic(folder, levels, counts, record):
    from matplotlib.colors import ListedColormap

    plt = style.pyplot()
    fig, axes = plt.subplots(2, 5, figsize=(12.5, 5.8))
    cmap = ListedColormap(LEVEL_COLOURS).with_extremes(bad="white")
    upper = np.triu(np.ones((49, 49), bool), k=1)
    for c, ax in enumerate(axes.flat):
        ax.imshow(np.ma.masked_array(levels[c], upper), cmap=cmap, vmin=-0.5, vmax=4.5,
                  interpolation="nearest")
        text = "\n".join(f"{name:>8}: {n:4d}" for name, n in zip(LEVEL_NAMES[::-1],
                                                                   counts[c][::-1]))
        ax.text(0.97, 0.97, text, transform=ax.transAxes, ha="right", va="top",
                family="monospace", fontsize=7)
        ax.set_title(f"class {c}")
        ax.set_xticks([0, 24, 48])
        ax.set_yticks([0, 24, 48])
    handles = [plt.Rectangle((0, 0), 1, 1, color=col, ec="0.5") for col in LEVEL_COLOURS]
    fig.legend(handles, [f"|Q| {n} of max" for n in LEVEL_NAMES], loc="lower center", ncol=5,
               frameon=False)
    fig.suptitle("mnist7_taylor: order-2 coefficients (raw pixels), five magnitude levels")
    fig.tight_layout(rect=(0, 0.05, 1, 0.97))
    style.save(fig, folder, record.name, record)


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
