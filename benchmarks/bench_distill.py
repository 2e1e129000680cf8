"""Benchmark: distil 1,000 MNIST images per class down to one per class (9 levels, k = 2).

Claim checked: "Distilling 1,000 MNIST images per class down to one per class takes under 10
minutes on 2 cores". Reports wall time (total and per level) and peak resident memory
(``resource.getrusage(RUSAGE_SELF).ru_maxrss``, the process's high-water mark, including
the backend and the loaded dataset) as JSON. Runs under any Keras backend (``KERAS_BACKEND``).

    TN_KERAS_DATA=path/to/data python benchmarks/bench_distill.py \
        --weights /path/to/mnist_taylornet_checkpoint --out /tmp/bench_distill --json out.json

Without ``--weights`` the zoo's pretrained mnist_taylornet is used. The machine's other load
matters on 2 cores: note it (``uptime``) beside the numbers.
"""
import json
import os
import platform
import resource
import time

from tn_keras.distill import config

import _common  # benchmarks/_common.py: the --json option and report writer


def main(argv=None):
    p = _common.parser(__doc__)
    p.add_argument("--model", default="mnist_taylornet")
    p.add_argument("--weights", default="pretrained")
    p.add_argument("--per-class", type=int, default=1000)
    p.add_argument("--levels", type=int, default=None, help="default: down to one per class")
    p.add_argument("--steps", type=int, default=None, help="default: the method's")
    p.add_argument("--method", choices=tuple(config.METHODS), default=config.DEFAULT_METHOD)
    p.add_argument("--out", required=True, help="export folder (replaced)")
    p.add_argument("--data-dir")
    args = p.parse_args(argv)

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    from tn_keras import datasets, zoo
    from tn_keras.distill import distill, max_levels

    dataset = zoo.info(args.model).dataset
    x, y = datasets.load(dataset, "train", data_dir=args.data_dir)
    model = zoo.load(args.model, weights=args.weights, compile=False)
    levels = (args.levels if args.levels is not None
              else max_levels(args.per_class, config.DEFAULT_GROUP_SIZE))
    settings = config.DistillConfig(levels=levels, per_class=args.per_class,
                                    steps=args.steps, method=args.method).resolved()
    export = config.LevelExportConfig(directory=args.out, overwrite=True,
                                      dataset={"dataset": dataset, "split": "train"},
                                      model_info={"name": args.model, "weights": str(args.weights)})
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    result = distill(model, x, y, settings=settings, export=export,
                     progress=lambda m: print(m, flush=True))
    wall = time.perf_counter() - t0
    report = dict(
        benchmark=f"distill {args.per_class} {dataset} images per class, {levels} levels",
        per_class=args.per_class, levels=levels, steps=settings.steps, method=settings.method,
        images_per_class=[sorted(set(lv.images_per_class.values()))[0] for lv in result],
        wall_time_seconds=round(wall, 1),
        level_seconds=[round(lv.wall_time_seconds, 1) for lv in result],
        under_10_minutes=wall < 600,
        peak_rss_mb=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        rss_before_distill_mb=round(rss_before / 1024, 1),
        cpu_count=os.cpu_count(),
        load_average_at_end=os.getloadavg(),
        python=platform.python_version(), keras=keras.__version__,
        backend=keras.backend.backend(),
    )
    print(json.dumps(report, indent=2))
    _common.write_report(args.json, report)


if __name__ == "__main__":
    main()
