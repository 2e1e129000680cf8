"""Figure S5/S6-style plot of Eq. (S3): s and d against level, one line per class.

Drawn with Pillow (already a dependency) so that no plotting library is needed.
"""
from __future__ import annotations

import math

from tn_keras.utils.files import atomic_path

# Matplotlib's tab10 colours: one per class.
COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
           "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"]


def _panel(draw, box, table, key, title):
    left, top, right, bottom = box
    levels = sorted(table)
    classes = sorted({c for lv in levels for c in table[lv]})
    values = [table[lv][c][key] for lv in levels for c in table[lv]]
    values = [v for v in values if v is not None and not math.isnan(v)]
    lo, hi = (min(values), max(values)) if values else (0.0, 1.0)
    if hi - lo < 1e-9:
        lo, hi = lo - 0.5, hi + 0.5
    pad = 0.05 * (hi - lo)
    lo, hi = lo - pad, hi + pad
    draw.rectangle(box, outline="black")
    draw.text((left, top - 16), title, fill="black")
    span = max(1, levels[-1] - levels[0]) if levels else 1

    def to_xy(lv, v):
        x = left + (lv - levels[0]) / span * (right - left)
        y = bottom - (v - lo) / (hi - lo) * (bottom - top)
        return x, y

    for lv in levels:
        x, _ = to_xy(lv, lo)
        draw.line([(x, bottom), (x, bottom + 4)], fill="black")
        draw.text((x - 3, bottom + 6), str(lv), fill="black")
    for frac in (0.0, 0.5, 1.0):
        v = lo + frac * (hi - lo)
        _, y = to_xy(levels[0] if levels else 0, v)
        draw.text((left - 44, y - 6), f"{v:.3f}", fill="black")
    draw.text(((left + right) / 2 - 15, bottom + 20), "level", fill="black")
    for i, c in enumerate(classes):
        colour = COLOURS[i % len(COLOURS)]
        points = [to_xy(lv, table[lv][c][key]) for lv in levels
                  if c in table[lv] and table[lv][c][key] is not None
                  and not math.isnan(table[lv][c][key])]
        if len(points) > 1:
            draw.line(points, fill=colour, width=2)
        for x, y in points:
            draw.ellipse([x - 2, y - 2, x + 2, y + 2], fill=colour)
    return classes


def plot_similarity(table: dict, path: str, title: str = "Eq. (S3) per class"):
    """Save a PNG with two panels, s (cosine similarity) and d (squared distance).

    ``table`` is ``{level: {class: {"s": .., "d": ..}}}`` (as `similarity_by_level` returns).
    """
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (900, 400), "white")
    draw = ImageDraw.Draw(img)
    draw.text((10, 5), title, fill="black")
    classes = _panel(draw, (70, 40, 420, 340), table, "s", "s: mean cosine similarity")
    _panel(draw, (500, 40, 850, 340), table, "d", "d: mean squared distance (= 2 - 2s)")
    for i, c in enumerate(classes):
        x = 70 + i * 70
        draw.line([(x, 380), (x + 20, 380)], fill=COLOURS[i % len(COLOURS)], width=3)
        draw.text((x + 24, 374), f"class {c}", fill="black")
    with atomic_path(path) as tmp:
        img.save(tmp, format="PNG")
