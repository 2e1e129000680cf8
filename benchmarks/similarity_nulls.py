"""Eq. (S3)'s s of distilled cascades against its two null curves (NumPy only, no network).

For each cascade folder (a shipped one under saved_datasets/, or a `tn-keras distill --out`
export): the distilled s per class of every level present is read from the level manifests;
level 0 is the export's own, or for a shipped cascade (level 0 is never shipped) rebuilt from
the real training images with the cascade's recorded seed and per_class
(`tn_keras.distill.groups.starting_subset`). The two nulls of `tn_keras.distill.null_curves`
(averaging only: the pixel means of the cascade's own random groups; random real: as many random
real training images per class) are computed for every level from that level 0.

A rebuilt level 0 is checked: with ``init="first"`` each image of the first level present
started from one real image of level 0, found by following the groups' first members down the
levels; the share of images whose nearest level-0 image of their class (Euclidean) is that one
is printed ("start found").

    TN_KERAS_DATA=/path/to/data python benchmarks/similarity_nulls.py \\
        saved_datasets/mnist.dm.from640 saved_datasets/cifar10.dm.from640 --json nulls.json
"""
import glob
import os

import numpy as np

import _common  # benchmarks/_common.py: the --json option and report writer


def _levels(folder):
    """``{level: manifest}`` of the level folders present."""
    from tn_keras.datasets.distilled_levels import read_manifest

    found = {}
    for path in glob.glob(os.path.join(folder, "level_*")):
        manifest = read_manifest(path)
        if manifest is not None:
            found[int(manifest["level"])] = manifest
    if not found:
        raise SystemExit(f"{folder}: no level folder with a manifest.")
    return dict(sorted(found.items()))


def _table(similarity):
    """A manifest's similarity record with int classes and NaN for JSON's null."""
    return {int(c): {k: (np.nan if v is None else v) for k, v in row.items()}
            for c, row in similarity.items()}


def _start_indices(y0, algorithm, first_level):
    """Level-0 index each image of ``first_level`` started from (init="first")."""
    from tn_keras.distill.groups import first_members
    from tn_keras.distill.groups import make_groups

    y, start = y0, np.arange(len(y0))
    for a in range(1, first_level + 1):
        group_of, y = make_groups(y, algorithm["group_size"], algorithm["seed"], a)
        start = start[first_members(group_of, len(y))]
    return start, y


def _start_found(x0, y0, folder, first_level, algorithm):
    """Share of the first level's images whose nearest level-0 image of their class is the
    real image it started from."""
    from tn_keras.datasets.distilled_levels import read_images

    x, y = read_images(os.path.join(folder, f"level_{first_level}"))
    start, expected_y = _start_indices(y0, algorithm, first_level)
    if not np.array_equal(y, expected_y):
        return 0.0
    flat0 = x0.reshape(len(x0), -1).astype(np.float32)
    flat = x.reshape(len(x), -1).astype(np.float32)
    hits = 0
    for c in np.unique(y):
        mine, pool = np.flatnonzero(y == c), np.flatnonzero(y0 == c)
        # |a - b|^2 = |a|^2 - 2 a.b + |b|^2; |a|^2 is the same for every candidate b.
        dist = (flat0[pool] ** 2).sum(1)[None, :] - 2 * flat[mine] @ flat0[pool].T
        hits += int(np.sum(pool[dist.argmin(axis=1)] == start[mine]))
    return hits / len(y)


def compare(folder, data_dir=None):
    from tn_keras import datasets
    from tn_keras.datasets.distilled_levels import read_images
    from tn_keras.distill.groups import starting_subset
    from tn_keras.distill.null_curves import null_curves
    from tn_keras.distill.similarity import similarity

    levels = _levels(folder)
    first = next(iter(levels.values()))
    algorithm, source = first["algorithm"], first["source"]
    if algorithm.get("formation"):
        raise SystemExit(f"{folder}: a multi-formation cascade; its decoded images per class "
                         "are not the groups' counts, so the nulls do not apply as they are.")
    pool = datasets.load(source["dataset"], source.get("split", "train"), data_dir=data_dir)
    report = {"folder": folder, "dataset": source["dataset"], "algorithm": algorithm}
    if 0 in levels:
        x0, y0 = read_images(os.path.join(folder, "level_0"))
        report["level_0"] = "the export's"
    else:
        x0, y0 = starting_subset(*pool, algorithm["per_class"], algorithm["seed"])
        report["level_0"] = "rebuilt"
        if algorithm.get("init") == "first":
            report["start_found"] = _start_found(x0, y0, folder, min(levels), algorithm)
    depth = max(levels)
    nulls = null_curves(x0, y0, pool, depth, algorithm["group_size"], algorithm["seed"])
    distilled = {a: _table(m["similarity"]) for a, m in levels.items()}
    distilled.setdefault(0, similarity(x0, y0))
    report["curves"] = {"distilled": distilled, **nulls}
    return report


def _no_nan(value):
    """``value`` with NaN as None (JSON has no NaN)."""
    if isinstance(value, dict):
        return {k: _no_nan(v) for k, v in value.items()}
    return None if isinstance(value, float) and np.isnan(value) else value


def _cell(table, level):
    values = [v["s"] for v in table.get(level, {}).values() if not np.isnan(v["s"])]
    if not values:
        return "-"
    return f"{np.mean(values):.3f} [{min(values):.3f}, {max(values):.3f}]"


def print_report(report):
    curves = report["curves"]
    print(f"\n{report['folder']} ({report['dataset']}, method {report['algorithm']['method']}, "
          f"level 0 {report['level_0']}"
          + (f", start found for {report['start_found']:.1%}" if "start_found" in report else "")
          + ")")
    print("mean s over classes [min, max]")
    print("| level | per class | distilled | averaging only | random real |")
    print("| --- | --- | --- | --- | --- |")
    for a in sorted(curves["averaging_only"]):
        per_class = max(v["n"] for v in curves["averaging_only"][a].values())
        print(f"| {a} | {per_class} | " + " | ".join(
            _cell(curves[k], a) for k in ("distilled", "averaging_only", "random_real")) + " |")


def main(argv=None):
    p = _common.parser(__doc__)
    p.add_argument("folders", nargs="+", help="cascade or export folders")
    p.add_argument("--data-dir", help="dataset folder (default: $TN_KERAS_DATA)")
    args = p.parse_args(argv)
    reports = [compare(folder, args.data_dir) for folder in args.folders]
    for report in reports:
        print_report(report)
    _common.write_report(args.json, {"reports": _no_nan(reports)})


if __name__ == "__main__":
    main()
