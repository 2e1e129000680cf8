"""Benchmark of tn_keras.datasets: cold load times, pipeline throughput vs. a training step.

Usage::

    KERAS_BACKEND=jax python benchmarks/bench_datasets.py --data-dir /path/to/data [--batches 100]

Prints a table: time to load each dataset cold from its npz (first `load` in this process),
images/s delivered by the CIFAR-10 training pipelines with augmentation (batch 128): tf.data
(when TensorFlow is the backend) and the NumPy `keras.utils.PyDataset` with 1 and
``--workers`` prefetching threads (read in order, as ``fit`` reads it),
images/s of one training step of ``zoo.build("cifar_taylornet")`` under the current backend
(or a small Keras conv net when the zoo is not importable, which the output says), the ratio
of each pipeline to the step, and the peak RSS.
"""
from __future__ import annotations

import argparse
import os
import resource
import sys
import time

import numpy as np

BATCH = 128


def _load_times(data_dir: str) -> list[tuple[str, float, str]]:
    from tn_keras import datasets

    rows = []
    # mnist7x7 comes after mnist in names(), so its time is the block averaging alone.
    for name in datasets.names():
        start = time.perf_counter()
        x, _ = datasets.load(name, "train", data_dir=data_dir, offline=True)
        datasets.load(name, "test", data_dir=data_dir, offline=True)
        rows.append((name, time.perf_counter() - start, f"{x.shape} {x.dtype}"))
    return rows


def _options():
    """Both pipelines measured with the same options: CIFAR-10 training, augmented, seeded."""
    from tn_keras import datasets

    return datasets.PipelineConfig(seed=0, dataset_name="cifar10", drop_remainder=True)


def _numpy_pipeline_rate(x: np.ndarray, y: np.ndarray, batches: int, workers: int) -> float:
    """Images/s of the NumPy pipeline read in order, as ``fit`` reads it, with ``workers``
    prefetching threads."""
    from tn_keras import datasets

    ds = datasets.make_dataset(x, y, BATCH, training=True, options=_options(),
                               pipeline="numpy", workers=workers)
    ds.on_epoch_begin()
    ds[0]  # Warm-up: the epoch's permutation, the thread pool.
    start = time.perf_counter()
    for index in range(1, batches + 1):
        ds[index % len(ds)]
    return batches * BATCH / (time.perf_counter() - start)


def _pipeline_rate(x: np.ndarray, y: np.ndarray, batches: int) -> float:
    from tn_keras import datasets

    ds = datasets.make_dataset(x, y, BATCH, training=True, options=_options(),
                               pipeline="tf.data")
    it = iter(ds)
    next(it)  # Warm-up: graph tracing and the first shuffle-buffer fill are not throughput.
    start = time.perf_counter()
    for _ in range(batches):
        next(it)
    return batches * BATCH / (time.perf_counter() - start)


def _build_model():
    """The zoo CIFAR model if available, else a small conv net; returns (model, label)."""
    import keras

    try:
        from tn_keras import zoo

        return zoo.build("cifar_taylornet"), "zoo.build('cifar_taylornet')"
    except Exception as e:  # The zoo is developed concurrently; any import/build failure.
        reason = f"{type(e).__name__}: {e}"
    model = keras.Sequential([
        keras.Input((32, 32, 3)),
        keras.layers.Rescaling(1 / 255.0),
        keras.layers.Conv2D(32, 3, padding="same", activation="relu"),
        keras.layers.MaxPooling2D(),
        keras.layers.Conv2D(64, 3, padding="same", activation="relu"),
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(10, activation="softmax"),
    ])
    return model, f"fallback small conv net (zoo unavailable: {reason[:80]})"


def _train_step_rate(steps: int) -> tuple[float, str]:
    import keras

    model, label = _build_model()
    # Zoo models end in softmax, like the fallback, so the loss takes probabilities.
    model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy())
    rng = np.random.default_rng(0)
    xb = rng.uniform(0, 255, (BATCH, 32, 32, 3)).astype(np.float32)
    yb = rng.integers(0, 10, BATCH)
    model.train_on_batch(xb, yb)  # Warm-up: compilation.
    start = time.perf_counter()
    for _ in range(steps):
        model.train_on_batch(xb, yb)
    return steps * BATCH / (time.perf_counter() - start), label


def main(argv: list[str] | None = None) -> int:
    """Runs the benchmark and prints the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=os.environ.get("TN_KERAS_DATA"),
                        help="folder with mnist.npz, fashion_mnist.npz, cifar10.npz "
                             "(default: $TN_KERAS_DATA)")
    parser.add_argument("--batches", type=int, default=100, help="pipeline batches to time")
    parser.add_argument("--steps", type=int, default=10, help="training steps to time")
    parser.add_argument("--workers", type=int, default=2, help="NumPy pipeline threads")
    args = parser.parse_args(argv)
    if not args.data_dir:
        parser.error("pass --data-dir or set TN_KERAS_DATA")

    from tn_keras import datasets

    print(f"{'dataset':14s} {'cold load (s)':>14s}  train array")
    for name, seconds, desc in _load_times(args.data_dir):
        print(f"{name:14s} {seconds:14.3f}  {desc}")

    import keras

    x, y = datasets.load("cifar10", "train", data_dir=args.data_dir)
    pipes = {}
    if keras.backend.backend() == "tensorflow":
        pipes["tf.data"] = _pipeline_rate(x, y, args.batches)
    for workers in sorted({1, args.workers}):
        pipes[f"numpy, {workers} thread(s)"] = _numpy_pipeline_rate(x, y, args.batches, workers)
    step, label = _train_step_rate(args.steps)
    print(f"\nbackend {keras.backend.backend()}, {os.cpu_count()} CPU cores")
    for name, pipe in pipes.items():
        print(f"{'CIFAR-10 pipeline (augment, batch 128), ' + name:48s} {pipe:10.0f} images/s"
              f"  {pipe / step:6.1f}x the training step")
    print(f"{'training step: ' + label:48s} {step:10.0f} images/s")
    # ru_maxrss is KiB on Linux, bytes on macOS.
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    peak_mib = peak / (1 << 20) if sys.platform == "darwin" else peak / 1024
    print(f"{'peak RSS':48s} {peak_mib:10.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
