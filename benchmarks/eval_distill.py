"""Evaluate a multi-level distillation: Eq. (S3) per class and level, reference classification,
and the train-from-scratch protocol against random real images (see tn_keras.distill.evaluation).

    TN_KERAS_DATA=path/to/data python benchmarks/eval_distill.py \
        --weights CKPT --per-class 1000 --export /tmp/d1000 --json results.json

``--export`` is reused with ``resume=True``: levels already written by an identical run (e.g.
benchmarks/bench_distill.py) are verified and loaded instead of recomputed.
``--eval-levels`` restricts the (slow) train-from-scratch runs to some levels; ``--evaluator
convnet3`` trains the literature's ConvNet-3 instead of the small default evaluator.
"""
import argparse
import json
import os
import time

import numpy as np

from tn_keras.distill import config


def _summary(export_dir):
    """The export's summary.json (written by distill): its settings are the run's."""
    with open(os.path.join(export_dir, "summary.json")) as f:
        return json.load(f)


def _parse(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="mnist_taylornet")
    p.add_argument("--weights", default="pretrained")
    p.add_argument("--per-class", type=int, default=1000)
    p.add_argument("--levels", type=int)
    p.add_argument("--steps", type=int, help="distillation steps (default: the method's)")
    p.add_argument("--learning-rate", type=float, help="default: the method's")
    p.add_argument("--method", default=config.DEFAULT_METHOD, choices=tuple(config.METHODS))
    p.add_argument("--match-against", choices=config.MATCH_AGAINST,
                   help="default: the method's")
    p.add_argument("--embedding-network", choices=config.EMBEDDING_NETWORKS,
                   help="--method dm (default: its)")
    p.add_argument("--real-batch", type=int, help="--method dm (default: its)")
    p.add_argument("--dsa", action=argparse.BooleanOptionalAction, help="--method dm")
    p.add_argument("--export", required=True)
    p.add_argument("--eval-levels", help="comma-separated levels for train-from-scratch "
                                          "(default: all)")
    p.add_argument("--evaluator", default=config.EVALUATORS[0], choices=config.EVALUATORS,
                   help="train-from-scratch protocol (tn_keras.distill.evaluation)")
    p.add_argument("--scratch-steps", type=int,
                   help="default: the evaluator's (300 steps; convnet3: 300 epochs)")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--test-examples", type=int, default=None)
    p.add_argument("--data-dir")
    p.add_argument("--json", required=True)
    return p.parse_args(argv)


def _evaluate_level(lv, model, train, test, args, seeds, scratch: bool):
    """One report row: Eq. (S3), reference classification and (if ``scratch``) the
    train-from-scratch accuracy of the level and of as many random real images."""
    from tn_keras import distill as D
    from tn_keras.distill.evaluation import random_real_subset

    (x, y), (tx, ty) = train, test
    per_class = min(lv.images_per_class.values())
    row = dict(level=lv.level, images_per_class=per_class,
               similarity={str(c): v for c, v in lv.similarity.items()},
               level_seconds=round(lv.wall_time_seconds, 1))
    row["reference_distilled"] = D.reference_classification(model, lv.x, lv.y, tx, ty)
    rx, ry = random_real_subset(x, y, per_class, seed=0)
    row["reference_random_real"] = D.reference_classification(model, rx, ry, tx, ty)
    if scratch:
        row["scratch_distilled"] = D.train_from_scratch(lv.x, lv.y, tx, ty, seeds=seeds,
                                                        steps=args.scratch_steps,
                                                        evaluator=args.evaluator)
        # Random real baseline: a fresh draw per seed.
        accs = []
        for s in seeds:
            rx, ry = random_real_subset(x, y, per_class, seed=s)
            accs += D.train_from_scratch(rx, ry, tx, ty, seeds=(s,), steps=args.scratch_steps,
                                         evaluator=args.evaluator)["accuracies"]
        row["scratch_random_real"] = dict(mean=float(np.mean(accs)), std=float(np.std(accs)),
                                          accuracies=accs)
    print(json.dumps({k: v for k, v in row.items() if k != "similarity"}), flush=True)
    return row


def _trend(levels):
    """Per class: does Eq. (S3)'s s rise and d fall from level to level?"""
    from tn_keras import distill as D

    trend = {}
    for c in sorted(levels[0].similarity):
        s = [lv.similarity[c]["s"] for lv in levels]
        d = [lv.similarity[c]["d"] for lv in levels]
        trend[str(c)] = dict(s_rises=D.is_monotone(s, True), d_falls=D.is_monotone(d, False))
    return trend


def main(argv=None):
    args = _parse(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

    from tn_keras import datasets, zoo
    from tn_keras import distill as D
    from tn_keras.distill.evaluation import PROTOCOLS

    dataset = zoo.info(args.model).dataset
    x, y = datasets.load(dataset, "train", data_dir=args.data_dir)
    tx, ty = datasets.load(dataset, "test", data_dir=args.data_dir)
    if args.test_examples:
        tx, ty = tx[:args.test_examples], ty[:args.test_examples]
    model = zoo.load(args.model, weights=args.weights, compile=False)
    levels_n = (args.levels if args.levels is not None
                else D.max_levels(args.per_class, config.DEFAULT_GROUP_SIZE))
    settings = config.DistillConfig(levels=levels_n, per_class=args.per_class,
                                    steps=args.steps, learning_rate=args.learning_rate,
                                    method=args.method, match_against=args.match_against,
                                    embedding_network=args.embedding_network,
                                    real_batch=args.real_batch, dsa=args.dsa)
    export = config.LevelExportConfig(directory=args.export, resume=True,
                                      dataset={"dataset": dataset, "split": "train"},
                                      model_info={"name": args.model, "weights": str(args.weights)})
    t0 = time.perf_counter()
    levels = D.distill(model, x, y, settings=settings, export=export,
                       progress=lambda m: print(m, flush=True))
    distill_seconds = time.perf_counter() - t0
    seeds = tuple(int(s) for s in args.seeds.split(","))
    eval_levels = ({int(a) for a in args.eval_levels.split(",")} if args.eval_levels
                   else {lv.level for lv in levels})
    rows = [_evaluate_level(lv, model, (x, y), (tx, ty), args, seeds, lv.level in eval_levels)
            for lv in levels]
    trend = _trend(levels)
    report = dict(model=args.model, weights=str(args.weights), dataset=dataset,
                  per_class=args.per_class, levels=levels_n,
                  distill_settings=_summary(args.export)["algorithm"],
                  distill_seconds=round(distill_seconds, 1), export=args.export,
                  test_examples=int(len(ty)), scratch_steps=args.scratch_steps, seeds=seeds,
                  evaluator=PROTOCOLS[args.evaluator], monotone_per_class=trend,
                  all_classes_s_rise_d_fall=all(t["s_rises"] and t["d_falls"]
                                                for t in trend.values()),
                  rows=rows)
    os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
    with open(args.json, "w") as f:
        json.dump(report, f, indent=1, default=lambda v: None)
    print("wrote", args.json)


if __name__ == "__main__":
    main()
