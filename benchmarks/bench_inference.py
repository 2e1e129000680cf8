"""Loading a zoo model and predicting with it under each Keras backend, in one run.

Usage::

    python benchmarks/bench_inference.py [--model cifar_taylornet] [--images 200,150]
                                         [--repeats 2] [--backends tensorflow,jax,torch]
                                         [--json out.json]

Each backend runs in its own child process (``KERAS_BACKEND`` is read once per process), one
after the other so they never compete for the cores. The child times ``import tn_keras``,
``zoo.load(model)`` (the shipped checkpoint, sha256-checked), then ``model.predict`` on random
raw 0..255 images: for every count in ``--images``, ``--repeats`` calls one after the other
(``--no-padding``: without `tn_keras.zoo_model`'s padding to whole batches, the baseline).
The first call of a count pays for tracing or compiling whatever shapes it meets; a later call
costs only the arithmetic, unless the backend compiles again. A count that is not a multiple
of the batch size (32) ends in a smaller batch, a new shape: the second count in the default,
150, shows whether a call with a different remainder compiles anew. Printed per backend and
call: seconds, and the ratio to the backend's last call of the same count (the steady state).
"""
from __future__ import annotations

import os
import resource
import sys
import time

import _common  # benchmarks/_common.py: the --json option and report writer


def child(args) -> dict:
    """Runs inside one backend's process; returns the measurements."""
    start = time.perf_counter()
    import keras
    import numpy as np

    from tn_keras import zoo
    from tn_keras import zoo_model
    imported = time.perf_counter() - start
    if args.no_padding:  # the baseline of ZooModel's padding to whole batches (JAX)
        zoo_model.PAD_PARTIAL_BATCHES = False

    start = time.perf_counter()
    model = zoo.load(args.model)
    loaded = time.perf_counter() - start
    rng = np.random.default_rng(0)
    calls = []
    for count in [int(c) for c in args.images.split(",")]:
        x = rng.integers(0, 256, (count, *model.input_shape[1:])).astype("float32")
        for repeat in range(args.repeats):
            start = time.perf_counter()
            model.predict(x, verbose=0)
            calls.append({"images": count, "repeat": repeat,
                          "seconds": time.perf_counter() - start})
    return {
        "backend": keras.backend.backend(),
        "pads_partial_batches": zoo_model.PAD_PARTIAL_BATCHES,  # False under TF and torch
        "import_s": imported,
        "load_s": loaded,
        "calls": calls,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main(argv=None) -> int:
    parser = _common.backend_parser(__doc__)
    parser.add_argument("--images", default="200,150",
                        help="comma-separated image counts, each predicted --repeats times")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--no-padding", action="store_true",
                        help="predict without ZooModel's padding to whole batches (the JAX "
                             "baseline: every new remainder compiles)")
    args = parser.parse_args(argv)
    rows = _common.backend_rows(
        __file__, args, child, ["--images", args.images, "--repeats", str(args.repeats)]
        + (["--no-padding"] if args.no_padding else []))
    if rows is None:  # this was the child
        return 0
    print(f"{args.model}, {os.cpu_count()} CPU cores")
    print(f"{'backend':12s} {'import (s)':>10s} {'load (s)':>9s}  "
          "predict calls: images/repeat seconds (x the count's last call)")
    for r in rows:
        if "error" in r:
            print(f"{r['backend']:12s} failed: {r['error']}")
            continue
        steady = {c["images"]: c["seconds"] for c in r["calls"]}  # the last call of each count
        calls = "  ".join(f"{c['images']}/{c['repeat']} {c['seconds']:.2f} "
                          f"({c['seconds'] / steady[c['images']]:.1f}x)" for c in r["calls"])
        name = r["backend"] + (" (no pad)" if args.no_padding else "")
        print(f"{name:12s} {r['import_s']:10.1f} {r['load_s']:9.1f}  {calls}")
    _common.write_report(args.json, {"args": vars(args), "rows": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
