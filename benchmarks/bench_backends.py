"""Training step time of a zoo model under each Keras backend, in one run.

Usage::

    python benchmarks/bench_backends.py [--model cifar_taylornet] [--steps 10] [--batch 128]
                                        [--backends tensorflow,jax,torch] [--mixed-precision]
                                        [--json out.json]

Each backend runs in its own child process (``KERAS_BACKEND`` is read once per process), one
after the other so they never compete for the cores: build the model, compile it with Adam
and sparse cross-entropy (Keras's default ``jit_compile="auto"`` per backend), time the first
``train_on_batch`` (tracing / compilation) and then ``--steps`` steps on one random batch of raw
0..255 images. Printed per backend: the median step, images/s, the first step, the peak RSS of
the child, and the ratio of each median to the TensorFlow one measured in the same run.
"""
from __future__ import annotations

import os
import resource
import statistics
import sys
import time

import _common  # benchmarks/_common.py: the --json option and report writer


def child(args) -> dict:
    """Runs inside one backend's process; returns the measurements."""
    import keras
    import numpy as np

    from tn_keras import zoo

    if args.mixed_precision:
        keras.mixed_precision.set_dtype_policy("mixed_bfloat16")
    keras.utils.set_random_seed(0)
    model = zoo.build(args.model)
    model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy())
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, (args.batch, *model.input_shape[1:])).astype("float32")
    y = rng.integers(0, model.output_shape[-1], args.batch)
    start = time.perf_counter()
    model.train_on_batch(x, y)
    first = time.perf_counter() - start
    times = []
    for _ in range(args.steps):
        start = time.perf_counter()
        model.train_on_batch(x, y)
        times.append(time.perf_counter() - start)
    median = statistics.median(times)
    return {
        "backend": keras.backend.backend(),
        "median_step_s": median,
        "images_per_s": args.batch / median,
        "first_step_s": first,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main(argv=None) -> int:
    parser = _common.backend_parser(__doc__)
    parser.add_argument("--steps", type=int, default=10, help="timed steps per backend")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--mixed-precision", action="store_true")
    args = parser.parse_args(argv)
    rows = _common.backend_rows(
        __file__, args, child, ["--steps", str(args.steps), "--batch", str(args.batch)]
        + (["--mixed-precision"] if args.mixed_precision else []))
    if rows is None:  # this was the child
        return 0
    baseline = next((r["median_step_s"] for r in rows
                     if r["backend"] == "tensorflow" and "error" not in r), None)
    print(f"{args.model}, batch {args.batch}, {args.steps} steps, {os.cpu_count()} CPU cores"
          + (", mixed_bfloat16" if args.mixed_precision else ""))
    print(f"{'backend':12s} {'step (ms)':>10s} {'images/s':>9s} {'first step (s)':>15s} "
          f"{'peak RSS (MiB)':>15s} {'vs TF':>6s}")
    for r in rows:
        if "error" in r:
            print(f"{r['backend']:12s} failed: {r['error']}")
            continue
        ratio = f"{r['median_step_s'] / baseline:5.2f}x" if baseline else "  n/a"
        print(f"{r['backend']:12s} {1000 * r['median_step_s']:10.1f} {r['images_per_s']:9.0f} "
              f"{r['first_step_s']:15.1f} {r['peak_rss_mib']:15.0f} {ratio:>6s}")
    _common.write_report(args.json, {"args": vars(args), "rows": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
