"""Benchmark of tn_keras.export: TFLite file sizes and per-image latency against Keras.

Usage::

    python benchmarks/bench_export.py [--models 'digits*' ...] [--runs 200] [--data-dir DIR]
                                      [--threads N] [--json results.json]

For each zoo model (its checkpoint when one exists, else an untrained build with seed 0; the
``weights`` column says which) it exports a float and a full-integer (int8) TFLite file and
reports their sizes, then times one image at batch 1, median over ``--runs`` calls after a
warm-up, for: the float and the int8 file in the LiteRT interpreter (`TFLiteModel`), Keras
``model.predict(x)`` and the lighter eager call ``model(x, training=False)``. The four are
timed interleaved, call by call, in the same process, so a busy machine slows all of them alike.
The int8 file is calibrated on 500 training images when the dataset is found, else on random
0..255 images (the ``calibration`` column says which).
"""
from __future__ import annotations

import argparse
import fnmatch
import json
import os
import platform
import statistics
import sys
import tempfile
import time

import numpy as np


def _time_interleaved(fns: dict, runs: int, warmup: int) -> dict:
    """Median seconds per call of each function, calling them in turn ``runs`` times."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    times = {name: [] for name in fns}
    for _ in range(runs):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def _calibration(name, shape, data_dir):
    """500 real training images via the export default, else random pixels."""
    from tn_keras.export.calibration import calibration_images

    try:
        images, _ = calibration_images(shape, model_name=name, data_dir=data_dir)
        return images, "500 train images"
    except Exception as e:  # no dataset on this machine: still benchmark speed and size
        print(f"  {name}: no training images ({type(e).__name__}); calibrating on random pixels",
              file=sys.stderr)
        return np.random.default_rng(0).uniform(0, 255, (64,) + shape).astype(np.float32), \
            "random pixels"


def bench_model(name: str, runs: int, warmup: int, data_dir, threads, folder) -> dict:
    import keras

    from tn_keras import zoo
    from tn_keras.export import ExportConfig
    from tn_keras.export import TFLiteModel
    from tn_keras.export import export

    if zoo.list(name, pretrained=True):  # shipped or trained weights (NAME.TAG entries)
        model, weights = zoo.load(name, compile=False), "checkpoint"
    else:
        keras.utils.set_random_seed(0)
        model, weights = zoo.build(name), "untrained"
    shape = tuple(model.input_shape[1:])
    float_path = os.path.join(folder, f"{name}.tflite")
    int8_path = os.path.join(folder, f"{name}_int8.tflite")
    start = time.perf_counter()
    config = ExportConfig(format="tflite", model_name=name)  # the library's defaults otherwise
    export(model, float_path, config)
    float_seconds = time.perf_counter() - start
    images, calibration = _calibration(name, shape, data_dir)
    start = time.perf_counter()
    export(model, int8_path, config, format="tflite_int8", representative_data=images)
    int8_seconds = time.perf_counter() - start
    tfl_float = TFLiteModel(float_path, num_threads=threads)
    tfl_int8 = TFLiteModel(int8_path, num_threads=threads)
    x = images[:1]  # one (real, when available) image, batch 1
    medians = _time_interleaved(
        {
            "tflite_float": lambda: tfl_float.predict_one(x),
            "tflite_int8": lambda: tfl_int8.predict_one(x),
            "keras_predict": lambda: model.predict(x, verbose=0),
            "keras_call": lambda: model(x, training=False),
        },
        runs, warmup,
    )
    return {
        "model": name,
        "weights": weights,
        "calibration": calibration,
        "input_shape": list(shape),
        "parameters": int(model.count_params()),
        "float_bytes": os.path.getsize(float_path),
        "int8_bytes": os.path.getsize(int8_path),
        "export_seconds": {"tflite": round(float_seconds, 2),
                           "tflite_int8": round(int8_seconds, 2)},
        "latency_ms": {k: round(v * 1e3, 4) for k, v in medians.items()},
    }


def _table(rows) -> str:
    head = ("model", "weights", "float KB", "int8 KB", "tfl float ms", "tfl int8 ms",
            "keras predict ms", "keras call ms", "call/tfl float")
    lines = [head]
    for r in rows:
        ms = r["latency_ms"]
        lines.append((
            r["model"], r["weights"], f"{r['float_bytes'] / 1024:.1f}",
            f"{r['int8_bytes'] / 1024:.1f}", f"{ms['tflite_float']:.3f}",
            f"{ms['tflite_int8']:.3f}", f"{ms['keras_predict']:.2f}", f"{ms['keras_call']:.2f}",
            f"{ms['keras_call'] / ms['tflite_float']:.0f}x",
        ))
    widths = [max(len(str(line[i])) for line in lines) for i in range(len(head))]
    out = ["| " + " | ".join(str(c).ljust(w) for c, w in zip(line, widths)) + " |"
           for line in lines]
    out.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(out)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="*", default=["*"], help="fnmatch patterns")
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--threads", type=int, default=None,
                        help="LiteRT interpreter threads (default: the runtime's)")
    parser.add_argument("--data-dir", default=os.environ.get("TN_KERAS_DATA"))
    parser.add_argument("--json", help="also write the results to this JSON file")
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

    import keras
    import tensorflow as tf

    from tn_keras import zoo
    from tn_keras.export.manifest import export_versions

    names = [n for n in zoo.list() if any(fnmatch.fnmatchcase(n, p) for p in args.models)]
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench_export_") as folder:
        for name in names:
            print(f"benchmarking {name} ...", file=sys.stderr, flush=True)
            rows.append(bench_model(name, args.runs, args.warmup, args.data_dir, args.threads,
                                    folder))
    print(_table(rows))
    result = {
        "command": " ".join([os.path.basename(sys.executable)] + sys.argv),
        "runs": args.runs, "warmup": args.warmup, "tflite_threads": args.threads,
        "cpus": os.cpu_count(), "load_average": os.getloadavg(), "machine": platform.machine(),
        "versions": export_versions(), "keras_backend": keras.backend.backend(),
        "tf_intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads(),
        "rows": rows,
    }
    if args.json:
        from tn_keras.utils.files import atomic_write_json

        atomic_write_json(args.json, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
