"""Figure S5/S6-style plots of Eq. (S3) against the level.

`plot_similarity`: s and d, one line per class (a distillation export's ``similarity.png``).
`plot_similarity_curves`: s only, one panel per class (and one for the class mean), with
several curves per panel: the distillation and its null curves (`tn_keras.distill.null_curves`).
d = 2 - 2s exactly, so a second panel of d would repeat s upside down.

Drawn with matplotlib (the field's standard: axes, ticks, legends and fonts are its job). A
level where a class has a single image has no pair, so s and d are undefined there: the line
stops (a gap, not a zero) and the level is shaded with a note, instead of an empty tick.
"""
from __future__ import annotations

import math
import os
from typing import Optional

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


# Distilled: solid blue; the nulls: dashed orange (averaging) and dotted grey (random real).
CURVE_STYLES = ({"color": "tab:blue", "linestyle": "-", "marker": "o"},
                {"color": "tab:orange", "linestyle": "--", "marker": "s"},
                {"color": "0.45", "linestyle": ":", "marker": "^"})
MEAN = "mean"  # the first panel: the mean of s over the classes


def _mean_over_classes(classes_table):
    values = [float(v["s"]) for v in classes_table.values()
              if v.get("s") is not None and not math.isnan(float(v["s"]))]
    return sum(values) / len(values) if values else math.nan


def _curve_values(table, levels, panel):
    if panel == MEAN:
        return [_mean_over_classes(table.get(lv, {})) for lv in levels]
    return [_value(table, lv, panel, "s") if lv in table else math.nan for lv in levels]


def _shade_gaps(ax, levels, series):
    """Shade the levels where no curve of the panel has a value (one image: no pairs)."""
    for i, lv in enumerate(levels):
        if all(math.isnan(values[i]) for values in series):
            ax.axvspan(lv - 0.4, lv + 0.4, color="0.92", zorder=0)
            ax.text(lv, 0.5, "no pairs", transform=ax.get_xaxis_transform(), ha="center",
                    va="center", rotation=90, fontsize=6, color="0.35")


def _normalised(table):
    return {int(lv): {int(c): v for c, v in classes.items()} for lv, classes in table.items()}


def plot_similarity_curves(curves: dict, path: str, title: str = "Eq. (S3) per class",
                           labels: Optional[dict] = None):
    """Save s against the level, one panel per class plus one for the mean over classes, each
    with every curve of ``curves``.

    Args:
        curves: ``{name: {level: {class: {"s": ..}}}}``, drawn in order (at most three:
            `CURVE_STYLES`); the first is the distillation, the others its nulls.
        path: where to save; the format follows the extension (``.png``, ``.svg``, ``.pdf``).
        labels: ``{name: legend label}`` (default: the names).
    """
    if not isinstance(curves, dict) or not 1 <= len(curves) <= len(CURVE_STYLES):
        raise ValueError(f"curves must be a dict of 1 to {len(CURVE_STYLES)} tables; got "
                         f"{len(curves) if isinstance(curves, dict) else type(curves).__name__}.")
    if labels is not None and not isinstance(labels, dict):
        raise ValueError(f"labels must be a dict {{curve name: legend label}} or None; got "
                         f"{type(labels).__name__}.")
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    curves = {name: _normalised(table) for name, table in curves.items()}
    labels = labels or {}
    levels = sorted({lv for table in curves.values() for lv in table})
    classes = sorted({c for table in curves.values() for lv in table for c in table[lv]})
    panels = [MEAN] + classes
    # One slot more than the panels: the legend gets a cell of its own.
    columns = min(4, len(panels) + 1)
    rows = -(-(len(panels) + 1) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(2.6 * columns, 2.1 * rows + 0.6),
                             dpi=DPI, sharex=True, sharey=True, squeeze=False)
    axes = axes.reshape(-1)
    for ax, panel in zip(axes, panels):
        series = []
        for (name, table), style in zip(curves.items(), CURVE_STYLES):
            values = _curve_values(table, levels, panel)
            series.append(values)
            ax.plot(levels, values, markersize=3, linewidth=2.0 if panel == MEAN else 1.3,
                    label=labels.get(name, name), **style)
        _shade_gaps(ax, levels, series)
        ax.set_title("mean over classes" if panel == MEAN else f"class {panel}",
                     fontsize=9, fontweight="bold" if panel == MEAN else "normal")
        ax.set_xticks(levels)
        ax.set_xlim(levels[0] - 0.5, levels[-1] + 0.5)
        ax.grid(alpha=0.3)
        ax.tick_params(labelsize=7, labelleft=True, labelbottom=True)
    for ax in axes[:len(panels):columns]:
        ax.set_ylabel("s (Eq. S3)", fontsize=8)
    for ax in axes[len(panels):]:
        ax.axis("off")
    handles, legend_labels = axes[0].get_legend_handles_labels()
    axes[len(panels)].legend(handles, legend_labels, loc="center", fontsize=7, frameon=False)
    fig.supxlabel("distillation level", fontsize=9)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=os.path.splitext(path)[1][1:] or "png", dpi=DPI)
    plt.close(fig)
