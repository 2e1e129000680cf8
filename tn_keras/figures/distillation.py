"""Figs. S5 / S6 (Eq. S3's s and d per class against the level) and reference classification.

Figs. S5 / S6 draw the distillation's s beside two null curves on the same level 0
(`tn_keras.distill.null_curves`): the pixel means of the cascade's random groups, with no
network, and random real images; a rising s alone is what averaging does.

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


def _checked_nulls(nulls, table):
    """``nulls`` (`tn_keras.distill.null_curves.null_curves`), checked against the distilled
    table: both curves, the same levels and the same images per class at every level."""
    from tn_keras.distill.null_curves import AVERAGING
    from tn_keras.distill.null_curves import RANDOM_REAL

    if not isinstance(nulls, dict) or set(nulls) != {AVERAGING, RANDOM_REAL}:
        got = sorted(nulls) if isinstance(nulls, dict) else type(nulls).__name__
        raise ValueError(f"nulls must be null_curves()'s dict with keys {AVERAGING!r} and "
                         f"{RANDOM_REAL!r}; got {got}.")
    counts = {lv: {int(c): v["n"] for c, v in classes.items()} for lv, classes in table.items()}
    for name in (AVERAGING, RANDOM_REAL):
        theirs = {int(lv): {int(c): v["n"] for c, v in classes.items()}
                  for lv, classes in nulls[name].items()}
        if theirs != counts:
            raise ValueError(f"nulls: the {name!r} curve has other levels or images per class "
                             f"than the distillation ({theirs} against {counts}); compute it "
                             "from the same level 0 with the same group size.")
    return {AVERAGING: nulls[AVERAGING], RANDOM_REAL: nulls[RANDOM_REAL]}


def _series(means, levels):
    return ", ".join(f"{means[lv]:.3f}" for lv in levels if not math.isnan(means[lv]))


def _similarity_caption(spec, dataset, levels, seconds, seed, curves, means):
    from tn_keras.distill.null_curves import AVERAGING
    from tn_keras.distill.null_curves import DISTILLED
    from tn_keras.distill.null_curves import RANDOM_REAL
    from tn_keras.distill.null_curves import last_paired_level

    order = sorted(means[DISTILLED])
    last = last_paired_level(curves)
    per_class = max(v["n"] for v in curves[DISTILLED][last].values())
    distilled, averaged, real = (means[k][last] for k in (DISTILLED, AVERAGING, RANDOM_REAL))
    start = means[DISTILLED][order[0]]
    flat = [means[RANDOM_REAL][lv] for lv in order if not math.isnan(means[RANDOM_REAL][lv])]
    return (
        f"Paper: within-class cosine similarity s rises and squared distance d (= 2 - 2s, so "
        f"only s is drawn) falls with the distillation level, for every class. Measured: "
        f"{spec.model} distilling {spec.per_class} real {dataset} training images per class, "
        f"divided by {spec.group_size} per level down to one ({len(levels) - 1} levels), "
        f"{spec.steps} Adam steps per level"
        f"{'' if spec.steps == 40 else ' (the default is 40; fewer to fit 2 CPU cores)'}, "
        f"seed {seed}; {seconds:.0f} s of distillation. Beside it, two null curves computed "
        "with NumPy alone from the same level 0 with as many images per class: averaging "
        "only (each level the pixel means of the cascade's own random groups of the level "
        "before, no network) and random real (as many random real training images per "
        f"class). Mean s over classes per level: distilled {_series(means[DISTILLED], order)}; "
        f"averaging only {_series(means[AVERAGING], order)}; random real "
        f"{_series(means[RANDOM_REAL], order)}. At level {last} ({per_class} images per "
        f"class): distilled {distilled:.3f}, averaging only {averaged:.3f}, random real "
        f"{real:.3f}. What the signature shows: a class's distilled images become alike. What "
        f"it does not show: that the network put anything into them. Averaging alone takes s "
        f"from {start:.3f} to {averaged:.3f}; the network's part is the distance between the "
        f"distilled and averaging-only curves ({distilled - averaged:+.3f} here). Random real "
        f"subsets of the same sizes stay flat (mean s {min(flat):.3f} to {max(flat):.3f}; the "
        "spread grows as the sets shrink). The last level has one image per class, hence no "
        "pair: a shaded gap.")


def similarity_figure(folder, spec, dataset, levels, seconds, seed, nulls):
    """The S5 / S6 plot from distilled levels ``[Level, ...]`` with its two null curves
    (``nulls``: `tn_keras.distill.null_curves.null_curves` from the same level 0); returns the
    record. The JSON holds the three curves' tables and their means over classes."""
    from tn_keras.distill.null_curves import DISTILLED
    from tn_keras.distill.null_curves import LABELS
    from tn_keras.distill.null_curves import mean_s as mean_over_classes
    from tn_keras.distill.plot import plot_similarity_curves

    name = f"{dataset}_similarity"
    table = {lv.level: lv.similarity for lv in levels}
    curves = {DISTILLED: table, **_checked_nulls(nulls, table)}
    means = {key: mean_over_classes(curve) for key, curve in curves.items()}
    record = style.Figure(name, f"{spec.figure}: Eq. (S3) per class against the level, with "
                          "its null curves",
                          _similarity_caption(spec, dataset, levels, seconds, seed, curves, means))
    for ext in ("png", "svg"):
        plot_similarity_curves(curves, os.path.join(folder, f"{name}.{ext}"),
                               title=f"{spec.figure}: {spec.model} on {dataset}", labels=LABELS)
    record.images.append(f"{name}.png")
    record.data.append(f"{name}.svg")
    order = sorted(table)
    style.write_json(folder, f"{name}.json", {
        "similarity": table, "mean_s": [means[DISTILLED][lv] for lv in order],
        "levels": order, "curves": curves, "labels": LABELS,
        "mean_s_by_curve": {key: [m[lv] for lv in order] for key, m in means.items()}}, record)
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
    from tn_keras.distill.null_curves import null_curves

    dataset = zoo.info(spec.model).dataset
    model = zoo.load(spec.model, compile=False)
    train = datasets.load(dataset, "train", data_dir=data_dir)
    test = datasets.load(dataset, spec.test_split, data_dir=data_dir)
    test = (test[0][:spec.test_images], test[1][:spec.test_images])
    start = time.perf_counter()
    levels = distill(model, *train, levels=max_levels(spec.per_class, spec.group_size),
                     per_class=spec.per_class, steps=spec.steps, group_size=spec.group_size,
                     seed=seed)
    seconds = time.perf_counter() - start
    # The nulls start from the cascade's own level 0 and use its seed: the same groups.
    nulls = null_curves(levels[0].x, levels[0].y, train, len(levels) - 1, spec.group_size, seed)
    rows = reference_rows(model, [(lv.level, lv.x, lv.y) for lv in levels], train, test, seed)
    return [similarity_figure(folder, spec, dataset, levels, seconds, seed, nulls),
            reference_figure(folder, spec, dataset, rows)]
