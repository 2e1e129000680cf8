"""Benchmark: seconds per iteration of full-scale distribution matching (``method="dm"``)
against the existing ``method="distribution"``, at the same small size, and peak memory.

One iteration of each method is one compiled Keras step (``train_on_batch``) on one batch of
real images per class. Both start from the same images (``ipc`` real images per class) and
draw ``real_batch`` real images per class per iteration from the whole training split;
building and compiling are timed apart (two calls of each method, of ``warmup`` and
``warmup + iterations`` iterations; the difference is steady-state time). Peak memory is the
process's resident high-water mark (``ru_maxrss``) after each method, so the second figure
includes the first's. Runs under any Keras backend (``KERAS_BACKEND``).

    TN_KERAS_DATA=path/to/data python benchmarks/bench_dm_iteration.py --dataset mnist \
        --ipc 10 --real-batch 32 --iterations 10 --json out.json
"""
import argparse
import json
import os
import resource
import time

import numpy as np

from tn_keras.distill import config


def _peak_mb():
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _run_dm(start, labels, x, y, args, iterations):
    from tn_keras.distill import class_matching as cm

    settings = config.DistillConfig(method="dm", steps=iterations, real_batch=args.real_batch,
                                    embedding_network=args.embedding_network,
                                    dsa=not args.no_dsa).resolved()
    cm.match_classes(start, labels, x, y, settings, np.random.default_rng(0))


def _run_distribution(start, labels, x, y, args, iterations):
    from tn_keras.distill import distribution_matching as dmod

    dmod.REAL_BATCH = args.real_batch  # the same real batch per class as "dm"
    dmod.match(start, labels, x, y, iterations, config.METHODS["distribution"].learning_rate,
               np.random.default_rng(0))


def _measure(run, start, labels, x, y, args):
    """Seconds per iteration from two whole calls (``warmup`` and ``warmup + iterations``
    iterations): building and compiling, common to both, cancel out."""
    t0 = time.perf_counter()
    run(start, labels, x, y, args, args.warmup)
    short = time.perf_counter() - t0
    t0 = time.perf_counter()
    run(start, labels, x, y, args, args.warmup + args.iterations)
    long = time.perf_counter() - t0
    return dict(seconds_per_iteration=round((long - short) / args.iterations, 4),
                build_compile_and_warmup_seconds=round(short, 2),
                peak_rss_mb_after=_peak_mb())


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", default="mnist")
    p.add_argument("--ipc", type=int, default=10)
    p.add_argument("--real-batch", type=int, default=32)
    p.add_argument("--embedding-network", default="convnet3", choices=config.EMBEDDING_NETWORKS)
    p.add_argument("--no-dsa", action="store_true")
    p.add_argument("--iterations", type=int, default=10)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--data-dir")
    p.add_argument("--json")
    args = p.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    from tn_keras import datasets
    from tn_keras.distill.groups import starting_subset

    x, y = datasets.load(args.dataset, "train", data_dir=args.data_dir)
    start, labels = starting_subset(x, y, args.ipc, 0)
    start = start.astype(np.float32)
    loaded = _peak_mb()
    dm = _measure(_run_dm, start, labels, x, y, args)
    existing = _measure(_run_distribution, start, labels, x, y, args)
    report = dict(
        benchmark=f"one distribution-matching iteration, {args.dataset}, {args.ipc} images "
                  f"per class, {args.real_batch} real images per class",
        dm=dict(dm, embedding_network=args.embedding_network, dsa=not args.no_dsa),
        distribution=existing,
        # None when a difference is not positive (too few iterations to rise above noise).
        ratio_dm_to_distribution=(round(dm["seconds_per_iteration"]
                                        / existing["seconds_per_iteration"], 2)
                                  if min(dm["seconds_per_iteration"],
                                         existing["seconds_per_iteration"]) > 0 else None),
        peak_rss_mb_after_loading_data=loaded, backend=keras.backend.backend(),
        cpu_count=os.cpu_count(), load_average_at_end=os.getloadavg())
    print(json.dumps(report, indent=2))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)


if __name__ == "__main__":
    main()
