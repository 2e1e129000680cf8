"""Figs. S5 / S6 (Eq. S3's s and d per class against the level) and reference classification.

Reference classification (the paper's use of distilled images): each test image gets the class
of its nearest reference by cosine similarity of the network's embeddings
(`tn_keras.distill.reference_classification`). Each level is compared with the same number of
*random real* training images per class, drawn with the run's seed.
"""
from __future__ import annotations

import math
import os

import numpy as np

from tn_keras.figures import style


def random_real(x, y, per_class, seed):
    """``per_class`` random images of every class of ``(x, y)`` (without replacement)."""
    rng = np.random.default_rng(seed)
    index = np.concatenate([rng.choice(np.flatnonzero(y == c), per_class, replace=False)
                            for c in np.unique(y)])
    return x[index], y[index]


def reference_rows(model, levels, train, test, seed):
    """One row per level: accuracies with the level's images and with random real ones.

    Args:
        levels: ``[(level, x, y), ...]``.
        train, test: ``(x, y)`` pairs: the pool of random real references, the test images.
    """
    from tn_keras.distill import reference_classification

    rows = []
    for level, x, y in levels:
        per_class = int(np.bincount(np.asarray(y, np.int64)).max())
        distilled = reference_classification(model, x, y, *test)
        real = reference_classification(model, *random_real(*train, per_class, seed + level),
                                        *test)
        rows.append({"level": int(level), "per_class": per_class,
                     "distilled_nearest": distilled["nearest"],
                     "distilled_class_mean": distilled["class_mean"],
                     "random_nearest": real["nearest"], "random_class_mean": real["class_mean"],
                     "test_images": int(len(test[1]))})
    return rows


def similarity_figure(folder, spec, dataset, levels, seconds, seed):
    """The S5 / S6 plot from distilled levels ``[Level, ...]``; returns the record."""
    from tn_keras.distill import plot_similarity

    name = f"{dataset}_similarity"
    table = {lv.level: lv.similarity for lv in levels}
    mean_s = [np.nanmean([v["s"] for v in table[lv].values()]) if not all(
        math.isnan(v["s"]) for v in table[lv].values()) else math.nan for lv in sorted(table)]
    shown = ", ".join(f"{s:.3f}" for s in mean_s if not math.isnan(s))
    record = style.Figure(
        name, f"{spec.figure}: Eq. (S3) per class against the level",
        f"Paper: within-class cosine similarity s rises and squared distance d falls with the "
        f"distillation level, for every class. Measured: {spec.model} distilling "
        f"{spec.per_class} real {dataset} training images per class, halved per level down to "
        f"one ({len(levels) - 1} levels), {spec.steps} Adam steps per level"
        f"{'' if spec.steps == 40 else ' (the default is 40; fewer to fit 2 CPU cores)'}, "
        f"seed {seed}; {seconds:.0f} s of distillation. Mean s over "
        f"classes per level: {shown}. The last level has one image per class, hence no pair: "
        "it is a shaded gap.")
    for ext in ("png", "svg"):
        plot_similarity(table, os.path.join(folder, f"{name}.{ext}"),
                        title=f"{spec.figure}: {spec.model} on {dataset}")
    record.images.append(f"{name}.png")
    record.data.append(f"{name}.svg")
    style.write_json(folder, f"{name}.json", {"similarity": table, "mean_s": mean_s}, record)
    return record


def reference_figure(folder, spec, dataset, rows):
    """Accuracy by nearest reference against the level, distilled vs random real."""
    name = f"{dataset}_reference_classification"
    last = rows[-1]
    record = style.Figure(
        name, f"{spec.figure}: reference classification per level",
        f"Each of the first {last['test_images']} {spec.test_split} images of {dataset} gets "
        f"the class of its nearest reference (cosine similarity of {spec.model}'s "
        "embeddings; dashed: nearest class-mean embedding), with the level's distilled images "
        "as references or with as many random real training images per class. At one image "
        f"per class: distilled {last['distilled_nearest']:.1%}, random real "
        f"{last['random_nearest']:.1%}.")
    plt = style.pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 4))
    levels = [r["level"] for r in rows]
    for key, colour, label in (("distilled", "tab:blue", "distilled"),
                               ("random", "tab:orange", "random real")):
        ax.plot(levels, [100 * r[f"{key}_nearest"] for r in rows], "o-", color=colour,
                label=f"{label}: nearest reference")
        ax.plot(levels, [100 * r[f"{key}_class_mean"] for r in rows], "s--", color=colour,
                alpha=0.7, label=f"{label}: nearest class mean")
    ax.set_xticks(levels, [f"{r['level']}\n({r['per_class']}/class)" for r in rows])
    ax.set_xlabel("distillation level (images per class)")
    ax.set_ylabel("test accuracy (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(f"{spec.figure}: {spec.model}, references per level")
    fig.tight_layout()
    style.save(fig, folder, name, record)
    style.write_json(folder, f"{name}.json", rows, record)
    return record


def make(folder, spec, seed, data_dir=None):
    """Distil, then draw the S5 / S6 plot and the reference classification; returns records."""
    import time

    from tn_keras import datasets
    from tn_keras import zoo
    from tn_keras.distill import distill
    from tn_keras.distill import max_levels

    dataset = zoo.info(spec.model).dataset
    model = zoo.load(spec.model, compile=False)
    train = datasets.load(dataset, "train", data_dir=data_dir)
    test = datasets.load(dataset, spec.test_split, data_dir=data_dir)
    test = (test[0][:spec.test_images], test[1][:spec.test_images])
    start = time.perf_counter()
    levels = distill(model, *train, levels=max_levels(spec.per_class, 2),
                     per_class=spec.per_class, steps=spec.steps, seed=seed)
    seconds = time.perf_counter() - start
    rows = reference_rows(model, [(lv.level, lv.x, lv.y) for lv in levels], train, test, seed)
    return [similarity_figure(folder, spec, dataset, levels, seconds, seed),
            reference_figure(folder, spec, dataset, rows)]
