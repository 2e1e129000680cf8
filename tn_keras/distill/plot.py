"""Figure S5/S6-style plot of Eq. (S3): s and d against the level, one line per class.

Drawn with matplotlib (the field's standard: axes, ticks, legends and fonts are its job). A
level where a class has a single image has no pair, so s and d are undefined there: the line
stops (a gap, not a zero) and the level is shaded with a note, instead of an empty tick.
"""
from __future__ import annotations

import math
import os

from tn_keras.utils.files import atomic_path

# 900 x 400 pixels: the size the distillation export has always written.
FIGSIZE = (9.0, 4.0)
DPI = 100


def _value(table, level, c, key):
    v = table[level].get(c, {}).get(key)
    return math.nan if v is None else float(v)


def _gap_levels(table, levels, classes):
    """Levels where no class has a value (a single image per class: no pairs)."""
    return [lv for lv in levels
            if all(math.isnan(_value(table, lv, c, "s")) for c in classes)]


def _panel(ax, table, levels, classes, key, ylabel):
    import matplotlib.pyplot as plt

    colours = plt.get_cmap("tab10")
    for i, c in enumerate(classes):
        ax.plot(levels, [_value(table, lv, c, key) for lv in levels], marker="o",
                markersize=3, linewidth=1.4, color=colours(i % 10), label=f"class {c}")
    gaps = _gap_levels(table, levels, classes)
    for lv in gaps:
        ax.axvspan(lv - 0.4, lv + 0.4, color="0.92", zorder=0)
        ax.text(lv, 0.5, "1 image per class:\nno pairs", transform=ax.get_xaxis_transform(),
                ha="center", va="center", rotation=90, fontsize=7, color="0.35")
    ax.set_xticks(levels)
    ax.set_xlim(levels[0] - 0.5, levels[-1] + 0.5)
    ax.set_xlabel("distillation level")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)


def plot_similarity(table: dict, path: str, title: str = "Eq. (S3) per class"):
    """Save two panels, s (cosine similarity) and d (squared distance), against the level.

    ``table`` is ``{level: {class: {"s": .., "d": ..}}}`` (as `similarity_by_level` returns);
    the format follows ``path``'s extension (``.png``, ``.svg``, ``.pdf``).
    """
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    table = {int(k): v for k, v in table.items()}
    levels = sorted(table)
    classes = sorted({int(c) for lv in levels for c in table[lv]})
    table = {lv: {int(c): v for c, v in table[lv].items()} for lv in levels}
    fig, (left, right) = plt.subplots(1, 2, figsize=FIGSIZE, dpi=DPI)
    _panel(left, table, levels, classes, "s", "s: mean cosine similarity")
    _panel(right, table, levels, classes, "d", "d: mean squared distance (= 2 - 2s)")
    handles, labels = left.get_legend_handles_labels()
    fig.legend(handles, labels, loc="center right", fontsize=8, frameon=False)
    fig.suptitle(title)
    fig.subplots_adjust(left=0.08, right=0.86, bottom=0.14, top=0.88, wspace=0.3)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=os.path.splitext(path)[1][1:] or "png", dpi=DPI)
    plt.close(fig)
