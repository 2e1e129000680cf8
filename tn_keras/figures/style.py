"""Saving figures: PNG and SVG side by side, the data beside them, one style for all."""
from __future__ import annotations

import csv
import dataclasses
import json
import os

import numpy as np

DPI = 130
FONT_SIZE = 9


def pyplot():
    """matplotlib.pyplot on the file-only Agg backend (no display needed), project style."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    plt.rcParams.update({"font.size": FONT_SIZE, "axes.titlesize": FONT_SIZE + 1,
                         "figure.dpi": DPI, "savefig.dpi": DPI, "svg.fonttype": "none"})
    return plt


@dataclasses.dataclass
class Figure:
    """One figure of the report: its files (relative to the output folder) and caption."""

    name: str
    title: str
    caption: str
    images: list = dataclasses.field(default_factory=list)
    data: list = dataclasses.field(default_factory=list)


def save(fig, folder, name, record):
    """Write ``name.png`` and ``name.svg`` and list the PNG in ``record``."""
    plt = pyplot()
    for ext in ("png", "svg"):
        fig.savefig(os.path.join(folder, f"{name}.{ext}"), bbox_inches="tight")
    plt.close(fig)
    record.images.append(f"{name}.png")
    record.data.append(f"{name}.svg")


def write_csv(folder, name, header, rows, record):
    with open(os.path.join(folder, name), "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    record.data.append(name)


def write_json(folder, name, payload, record):
    with open(os.path.join(folder, name), "w", encoding="utf-8") as f:
        json.dump(_plain(payload), f, indent=1, sort_keys=True)
    record.data.append(name)


def _plain(value):
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return _plain(value.tolist())
    if isinstance(value, (np.floating, float)):
        return None if not np.isfinite(value) else float(value)
    if isinstance(value, np.integer):
        return int(value)
    return value
