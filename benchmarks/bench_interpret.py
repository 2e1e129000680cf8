"""Benchmark: exact order decomposition and order-2 Taylor expansion of the zoo's models.

Usage::

    TN_KERAS_DATA=/path/to/data python benchmarks/bench_interpret.py [--images 1000]
        [--hessian-model mnist_taylornet] [--json out.json]

Each configuration runs in its own subprocess (``--only NAME``) so that its peak resident set
size (VmHWM) is its own; the baseline of every row is measured in the same run:

* ``forward``: ``cifar_taylornet`` on the ``--images`` first lossless CIFAR-10 test images,
  float32 (one evaluation per image: the baseline of the decompositions).
* ``decompose32`` / ``decompose64``: `order_decomposition` of the same images in float32 /
  float64 (33 evaluations per image, degree 32), with the relative reconstruction error
  ``max_c |sum_k f_k - f| / max_c |f|`` against the float64 model (median and max) and the
  cancellation ``sum_k |f_k| / |f|`` of the true class's logit (median, max; meaningful for
  float64 only: in float32 the orders themselves are wrong). Each call builds (and, for
  float64, compiles) its own model copy: that cost is in the time; ``forward`` is compiled
  before it is timed.
* ``gradient``: the order-1 expansion (value and gradient of all 10 logits) of
  ``--hessian-model`` about the mean image: the baseline of ``hessian``.
* ``hessian``: its order-2 expansion, the full Hessian ``10 x D x D`` (D = 784 for MNIST).
* ``nodes``: the choice of the t-nodes, on ``--study-images`` images: Chebyshev nodes on
  ``[a, 1]`` for a = -1 (the library's), -0.5, 0, in float32 and float64; the reconstruction
  error as above and the error of the single orders, ``max_k |f_k - f_k^ref| / max_k |f_k^ref|``,
  against a float64 least-squares fit at 45 Chebyshev nodes on ``[-1.2, 1.2]``.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time

import _common  # benchmarks/_common.py: the --json option and report writer

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

CONFIGS = ("forward", "decompose32", "decompose64", "gradient", "hessian", "nodes")
NODE_INTERVALS = ((-1.0, 1.0), (-0.5, 1.0), (0.0, 1.0))
DECOMPOSITION_MODEL = "cifar_taylornet"


def _peak_rss_mb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _cifar(images):
    from tn_keras import datasets

    x, y = datasets.load("cifar10", "test_lossless")
    return x[:images].astype("float64"), y[:images]


def _run_decomposition(name, images):
    import numpy as np

    from tn_keras import interpret
    from tn_keras import zoo
    from tn_keras.interpret.decomposition import evaluate
    from tn_keras.interpret.graph import polynomial_part
    from tn_keras.interpret.precision import with_dtype

    model = zoo.load(DECOMPOSITION_MODEL, compile=False)
    x, y = _cifar(images)
    poly = polynomial_part(model)[0]
    if name == "forward":
        evaluate(poly, x[:256].astype("float32"))  # compile outside the timing
    start = time.perf_counter()
    if name == "forward":
        evaluate(poly, x.astype("float32"))
        return {"seconds": time.perf_counter() - start}
    dtype = "float32" if name == "decompose32" else "float64"
    orders = interpret.order_decomposition(model, x, dtype=dtype)
    seconds = time.perf_counter() - start
    exact = evaluate(with_dtype(poly, "float64"), x)
    error = interpret.reconstruction_error(orders, exact)
    rows = np.arange(len(y))
    cancellation = np.abs(orders[rows, :, y]).sum(axis=1) / np.abs(exact[rows, y])
    return {"seconds": seconds, "error_median": float(np.median(error)),
            "error_max": float(error.max()),
            "cancellation_median": float(np.median(cancellation)),
            "cancellation_max": float(cancellation.max())}


def _fit_orders(poly, x, dtype, low, high, count, degree=32):
    import numpy as np

    from tn_keras.interpret import decomposition as D

    nodes = low + (high - low) * (D.chebyshev_nodes(count) + 1) / 2
    values = D._ray_values(poly, x, np.zeros(x.shape[1:]), nodes, 264, dtype)
    rhs = values.transpose(1, 0, 2).reshape(count, -1)
    fit = np.linalg.lstsq(np.vander(nodes, degree + 1, increasing=True), rhs, rcond=None)[0]
    return fit.reshape(degree + 1, len(x), -1).transpose(1, 0, 2)


def _run_nodes(images):
    import numpy as np

    from tn_keras import interpret
    from tn_keras import zoo
    from tn_keras.interpret.decomposition import evaluate
    from tn_keras.interpret.graph import polynomial_part
    from tn_keras.interpret.precision import with_dtype

    x, _ = _cifar(images)
    poly = polynomial_part(zoo.load(DECOMPOSITION_MODEL, compile=False))[0]
    models = {"float32": poly, "float64": with_dtype(poly, "float64")}
    exact = evaluate(models["float64"], x)
    reference = _fit_orders(models["float64"], x, "float64", -1.2, 1.2, 45)
    scale = np.abs(reference).max(axis=(1, 2))
    rows = {}
    for low, high in NODE_INTERVALS:
        for dtype, model in models.items():
            orders = _fit_orders(model, x, dtype, low, high, 33)
            per_order = np.abs(orders - reference).max(axis=(1, 2)) / scale
            rows[f"[{low}, {high}] {dtype}"] = {
                "cond": float(np.linalg.cond(np.vander(
                    low + (high - low) * (np.cos((2 * np.arange(33) + 1) * np.pi / 66) + 1) / 2,
                    33, increasing=True))),
                "reconstruction_max": float(interpret.reconstruction_error(orders, exact).max()),
                "per_order_max": float(per_order.max())}
    return rows


def _run_expansion(name, model_name):
    from tn_keras import interpret
    from tn_keras import zoo

    model = zoo.load(model_name, compile=False)
    start = time.perf_counter()
    expansion = interpret.taylor_expansion(model, interpret.expansion.mean_image(model),
                                           order=1 if name == "gradient" else 2)
    seconds = time.perf_counter() - start
    out = {"seconds": seconds}
    if expansion.hessian is not None:
        out["hessian_shape"] = list(expansion.hessian.shape)
        out["hessian_mb"] = expansion.hessian.nbytes / 2**20
    return out


def run_one(name, args):
    if name in ("gradient", "hessian"):
        result = _run_expansion(name, args.hessian_model)
    elif name == "nodes":
        result = _run_nodes(args.study_images)
    else:
        result = _run_decomposition(name, args.images)
    result["peak_rss_mb"] = _peak_rss_mb()
    return result


def main(argv=None):
    parser = _common.parser(__doc__)
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--hessian-model", default="mnist_taylornet")
    parser.add_argument("--study-images", type=int, default=16)
    parser.add_argument("--configs", default=",".join(CONFIGS))
    parser.add_argument("--only", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.only:
        print("RESULT " + json.dumps(run_one(args.only, args)))
        return 0
    results = {}
    for name in args.configs.split(","):
        command = [sys.executable, os.path.abspath(__file__), "--only", name,
                   "--images", str(args.images), "--hessian-model", args.hessian_model,
                   "--study-images", str(args.study_images)]
        done = subprocess.run(command, capture_output=True, text=True)
        lines = [l for l in done.stdout.splitlines() if l.startswith("RESULT ")]
        if done.returncode or not lines:
            raise SystemExit(f"{name} failed:\n{done.stderr[-3000:]}")
        results[name] = json.loads(lines[-1][7:])
        print(name, json.dumps(results[name]), flush=True)
    for name, base in (("decompose32", "forward"), ("decompose64", "forward"),
                       ("hessian", "gradient")):
        if name in results and base in results:
            results[name]["ratio_to_" + base] = results[name]["seconds"] / results[base]["seconds"]
    report = {"images": args.images, "hessian_model": args.hessian_model,
              "machine": f"{platform.machine()}, {os.cpu_count()} CPUs", "results": results}
    _common.write_report(args.json, report)
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
