"""Whole-model interpretation of a zoo TaylorNet: class templates, order shares, examples.

* Class templates: `tn_keras.interpret.class_templates` about the dataset mean (the
  per-channel mean of the model's Normalization layer): d logit_c / d pixel.
* Order shares: `order_decomposition` of test images about the zero image; for class ``c``,
  over the test images of class ``c``, the share of order ``k`` is
  ``mean |f_k,c| / sum_k mean |f_k,c|`` (magnitudes: the orders can cancel, so the figure also
  gives the median cancellation ``sum_k |f_k,c| / |f_c|``).
* Examples: three correctly and three wrongly classified test images with the contribution of
  each order to the predicted (and the true) class's logit.
"""
from __future__ import annotations

import numpy as np

from tn_keras.figures import style


def order_bins(degree):
    """Orders grouped for a legible stacked bar: one each up to 4, then doublings."""
    if degree <= 8:
        return [(k, k) for k in range(degree + 1)]
    bins, low = [(0, 0), (1, 1), (2, 2)], 3
    while low <= degree:
        high = min(degree, 2 * low - 2 if low > 3 else 4)
        bins.append((low, high))
        low = high + 1
    return bins


def make(folder, name, model, x, y, class_names=None):
    """Three figures for model ``name`` on test images ``(x, y)``; returns their records."""
    from tn_keras import interpret

    orders = interpret.order_decomposition(model, x)
    logits = orders.sum(axis=1)
    degree = orders.shape[1] - 1
    class_names = class_names or [str(c) for c in range(orders.shape[2])]
    records = [_templates(folder, name, model, class_names),
               _shares(folder, name, orders, y, degree, class_names),
               _examples(folder, name, x, y, orders, logits, class_names)]
    return records


def _show_image(ax, image):
    if image.shape[-1] == 1:
        ax.imshow(image[..., 0], cmap="gray", vmin=0, vmax=255)
    else:
        ax.imshow(np.clip(image, 0, 255).astype(np.uint8))
    ax.set_xticks([])
    ax.set_yticks([])


def _templates(folder, name, model, class_names):
    from tn_keras import interpret

    templates = interpret.class_templates(model, center="mean")
    record = style.Figure(
        f"{name}_templates", f"{name}: class templates",
        f"The order-1 coefficients of each class's logit of {name} about the dataset mean "
        "(the per-channel mean of the model's Normalization layer): what a small change of "
        "each raw pixel does to the logit. Grey images: red raises the logit, blue lowers it; "
        "colour images: 0.5 + 0.5 g / max|g| per class, shown as RGB.")
    plt = style.pyplot()
    columns = min(5, len(class_names))
    rows = -(-len(class_names) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(2.3 * columns, 2.8 * rows), squeeze=False)
    for c, ax in enumerate(axes.flat):
        if c >= len(class_names):
            ax.axis("off")
            continue
        g = templates[c]
        bound = float(np.abs(g).max()) or 1.0
        if g.shape[-1] == 1:
            ax.imshow(g[..., 0], cmap="RdBu_r", vmin=-bound, vmax=bound)
        else:
            ax.imshow(0.5 + 0.5 * g / bound)
        ax.set_title(f"{class_names[c]}\nmax |g| {bound:.1e}", fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(f"{name}: d logit / d pixel about the mean image")
    fig.tight_layout()
    style.save(fig, folder, record.name, record)
    np.savez_compressed(f"{folder}/{record.name}.npz", templates=templates)
    record.data.append(f"{record.name}.npz")
    return record


def _shares(folder, name, orders, y, degree, class_names):
    magnitude = np.abs(orders)
    bins = order_bins(degree)
    means = np.stack([magnitude[y == c, :, c].mean(axis=0) if np.any(y == c)
                      else np.full(degree + 1, np.nan) for c in range(len(class_names))])
    shares = means / means.sum(axis=1, keepdims=True)
    logit = np.abs(orders.sum(axis=1))[np.arange(len(y)), y]
    cancellation = magnitude[np.arange(len(y)), :, y].sum(axis=1) / np.maximum(logit, 1e-300)
    record = style.Figure(
        f"{name}_order_shares", f"{name}: share of each order in the logits",
        f"Each order k's share of the true class's logit of {name} (degree {degree}) about "
        f"the zero image, mean |f_k| / sum_k mean |f_k| over {len(y)} test images, per class. "
        "The orders cancel: the median over images of sum_k |f_k| / |f| is "
        f"{np.median(cancellation):.3g} (so a large share is not a large net effect).")
    plt = style.pyplot()
    fig, ax = plt.subplots(figsize=(8.5, 4.2))
    colours = plt.get_cmap("viridis")(np.linspace(0, 1, len(bins)))
    bottom = np.zeros(len(class_names))
    for (low, high), colour in zip(bins, colours):
        part = shares[:, low:high + 1].sum(axis=1)
        label = f"order {low}" if low == high else f"orders {low}-{high}"
        ax.bar(range(len(class_names)), part, bottom=bottom, color=colour, label=label)
        bottom += part
    ax.set_xticks(range(len(class_names)), class_names, rotation=30)
    ax.set_ylabel("share of sum_k mean |f_k|")
    ax.set_ylim(0, 1)
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    ax.set_title(f"{name}: orders of the true class's logit about the zero image")
    fig.tight_layout()
    style.save(fig, folder, record.name, record)
    style.write_csv(folder, f"{record.name}.csv", ["class", "order", "mean_abs_f_k", "share"],
                    [(c, k, means[c, k], shares[c, k]) for c in range(len(class_names))
                     for k in range(degree + 1)], record)
    return record


def _symlog_axis(ax, largest):
    """A symmetric log axis with at most about four labelled decades on each side."""
    from matplotlib.ticker import NullLocator
    from matplotlib.ticker import SymmetricalLogLocator

    ax.set_yscale("symlog", linthresh=1.0)
    decades = max(1, int(np.ceil(np.log10(max(largest, 10.0)))))
    step = max(1, int(np.ceil(decades / 4)))
    ax.yaxis.set_major_locator(SymmetricalLogLocator(linthresh=1.0, base=10.0 ** step))
    ax.yaxis.set_minor_locator(NullLocator())
    ax.axhline(0, color="0.3", linewidth=0.5)


def _examples(folder, name, x, y, orders, logits, class_names):
    predicted = np.argmax(logits, axis=1)
    right, wrong = np.flatnonzero(predicted == y)[:3], np.flatnonzero(predicted != y)[:3]
    chosen = list(right) + list(wrong)
    record = style.Figure(
        f"{name}_examples", f"{name}: order decompositions of test images",
        f"Three correctly and {len(wrong)} wrongly classified test images (the first of "
        f"each among the {len(y)} decomposed) and the contribution f_k of each order to the "
        "predicted class's logit (and, for a wrong one, the true class's) about the zero "
        "image, on a symmetric log scale.")
    plt = style.pyplot()
    fig, axes = plt.subplots(len(chosen), 2, figsize=(9, 2.1 * len(chosen)),
                             gridspec_kw={"width_ratios": [1, 5]}, squeeze=False)
    k = np.arange(orders.shape[1])
    rows = []
    for (image_ax, bar_ax), i in zip(axes, chosen):
        _show_image(image_ax, x[i])
        p, t = predicted[i], y[i]
        image_ax.set_title(f"true {class_names[t]}, predicted {class_names[p]}", fontsize=8)
        # One series sits on its ticks; two sit side by side, either side of them.
        offset, width = (0.2, 0.4) if p != t else (0.0, 0.8)
        bar_ax.bar(k - offset, orders[i, :, p], width=width, color="tab:blue",
                   label=f"predicted {class_names[p]}: f = {logits[i, p]:.3g}")
        if p != t:
            bar_ax.bar(k + offset, orders[i, :, t], width=width, color="tab:orange",
                       label=f"true {class_names[t]}: f = {logits[i, t]:.3g}")
        _symlog_axis(bar_ax, np.abs(orders[i, :, [p, t]]).max())
        bar_ax.set_xticks(k if len(k) <= 12 else k[::max(1, len(k) // 12)])
        bar_ax.legend(loc="lower right", bbox_to_anchor=(1.0, 0.98), ncol=2, fontsize=7,
                      frameon=False)
        bar_ax.set_ylabel("f_k")
        rows += [(int(i), int(t), int(p), int(c), int(kk), orders[i, kk, c])
                 for c in {p, t} for kk in k]
    axes[-1, 1].set_xlabel("order k")
    fig.suptitle(f"{name}: f = sum_k f_k for {len(right)} right and {len(wrong)} wrong images")
    fig.tight_layout()
    style.save(fig, folder, record.name, record)
    style.write_csv(folder, f"{record.name}.csv",
                    ["test_index", "true", "predicted", "class", "order", "f_k"], rows, record)
    return record
