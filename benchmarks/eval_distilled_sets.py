"""Evaluate distilled levels with the ConvNet-3 protocol on several test splits at once.

    TN_KERAS_DATA=path/to/data python benchmarks/eval_distilled_sets.py \
        --export /tmp/cdm640 --dataset cifar10 --levels 6,9 --splits test,test_lossless \
        --json cdm640_eval.json

For every level and seed, a fresh evaluator (`tn_keras.distill.evaluation`, ConvNet-3 by
default) is trained ONCE on the level's images and scored on every test split, so that the
figures on CIFAR-10's 1,000 lossless test images and on all 10,000 come from the same trained
networks. The baseline is random real training images at the same storage, a fresh draw per
seed (`random_real_subset`), trained and scored the same way: as many per class as the level
stores, or for a level made with multi-formation (``f^2`` coarse images a stored slot,
`tn_keras.datasets.multi_formation`) ``f^2`` times as many, coarse-grained into slots and
decoded as the level's are, so that the figure says what the matching adds to the format. The
JSON is rewritten after every level, so a run cut short keeps what it measured. The results go into the shipped sets' manifests
(`python -m tn_keras.distill.shipping`, docs/distillation.md).
"""
import argparse
import json
import os
import time

import numpy as np

import _common  # benchmarks/_common.py: the report writer


def _parse(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--export", required=True, help="a distillation's export folder")
    p.add_argument("--dataset", required=True, help="its dataset (real training images and "
                                                    "test splits)")
    p.add_argument("--levels", required=True, help="comma-separated levels to evaluate")
    p.add_argument("--splits", default="test", help="comma-separated test splits")
    p.add_argument("--evaluator", default="convnet3")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--steps", type=int, help="default: the evaluator's")
    p.add_argument("--data-dir")
    p.add_argument("--json", required=True)
    return p.parse_args(argv)


def train_and_score(x, y, tests: dict, seed: int, evaluator: str, steps=None) -> dict:
    """One evaluator trained on ``(x, y)`` by `tn_keras.distill.train_from_scratch`; its
    accuracy on every test split (the splits stacked, each one a subset of the stack)."""
    from tn_keras.distill import train_from_scratch

    tx = np.concatenate([np.asarray(t[0]) for t in tests.values()])
    ty = np.concatenate([np.asarray(t[1]) for t in tests.values()])
    bounds = np.cumsum([0] + [len(t[1]) for t in tests.values()])
    masks = {split: (np.arange(len(ty)) >= lo) & (np.arange(len(ty)) < hi)
             for split, lo, hi in zip(tests, bounds[:-1], bounds[1:])}
    result = train_from_scratch(x, y, tx, ty, seeds=(seed,), steps=steps, evaluator=evaluator,
                                test_subsets=masks)
    return {split: result["subsets"][split]["accuracies"][0] for split in tests}


def _summarise(runs: list, splits) -> dict:
    out = {}
    for split in splits:
        accs = [r[split] for r in runs]
        out[split] = dict(mean=float(np.mean(accs)), std=float(np.std(accs)), accuracies=accs)
    return out


def evaluate_level(export, level, train, tests, seeds, args) -> dict:
    from tn_keras.distill import load_level
    from tn_keras.distill.evaluation import PROTOCOLS, random_real_subset, training_length

    from tn_keras.datasets import multi_formation as formation
    from tn_keras.datasets.distilled_levels import level_dir, level_formation

    lx, ly = load_level(export, level)
    factor = level_formation(level_dir(export, level))
    per_class = int(np.bincount(ly).min())  # decoded images per class
    t0 = time.perf_counter()
    distilled = [train_and_score(lx, ly, tests, s, args.evaluator, args.steps) for s in seeds]
    real = []
    for s in seeds:
        rx, ry = random_real_subset(*train, per_class, seed=s)
        if factor > 1:  # the same format: f^2 coarse real images a slot, decoded
            rx, ry = formation.decode_to_uint8(formation.encode(rx, factor),
                                               ry[::factor * factor], factor)
        real.append(train_and_score(rx, ry, tests, s, args.evaluator, args.steps))
    _, steps, _ = training_length(args.evaluator, len(ly), args.steps)
    baseline = ("as many random training images per class, a fresh draw per seed" if factor == 1
                else f"{per_class} random training images per class, a fresh draw per seed, "
                     f"coarse-grained {factor}x{factor} and stored {factor * factor} to a slot "
                     "as the set's are (multi-formation without matching)")
    return dict(level=int(level), images_per_class=per_class // factor ** 2,
                decoded_images_per_class=per_class, formation=factor, images=int(len(ly)),
                baseline=baseline,
                steps=int(steps), seeds=list(seeds), evaluator=args.evaluator,
                protocol=PROTOCOLS[args.evaluator],
                test_examples={k: int(len(v[1])) for k, v in tests.items()},
                distilled=_summarise(distilled, tests), random_real=_summarise(real, tests),
                seconds=round(time.perf_counter() - t0, 1))


def main(argv=None):
    args = _parse(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from tn_keras import datasets

    train = datasets.load(args.dataset, "train", data_dir=args.data_dir)
    tests = {s: datasets.load(args.dataset, s, data_dir=args.data_dir)
             for s in args.splits.split(",")}
    seeds = tuple(int(s) for s in args.seeds.split(","))
    report = dict(export=args.export, dataset=args.dataset, rows=[])
    for level in (int(a) for a in args.levels.split(",")):
        row = evaluate_level(args.export, level, train, tests, seeds, args)
        print(json.dumps(row), flush=True)
        report["rows"].append(row)
        _common.write_report(args.json, report)
    print("wrote", args.json)


if __name__ == "__main__":
    main()
