"""Benchmark: one training step of PolyCG against convolutions of equal and of typical work.

Usage::

    python benchmarks/bench_polycg.py [--batch 128] [--warmup 5] [--steps 20] [--rounds 3]
                                      [--jit] [--no-memory] [--json out.json]

Configurations, all on a float32 batch of ``(batch, 32, 32, 64)`` (channels_last):

* ``polycg``  PolyCG(64, kernel 2x2, stride 2, order 2, rank 1): one fused 2x2/2 convolution to
  3 x 64 channels, split, ``a + b * c`` and the bias.
* ``conv_eq`` (a) Conv2D(192, 2x2, stride 2): the same convolution work (3x the filters, same
  kernel); the target is PolyCG within 1.3x of it.
* ``conv_pool`` (b) Conv2D(64, 3x3, 'same') + ReLU + MaxPool2D(2): the usual conv block that a
  coarse-graining layer replaces (same output shape).

A step is a ``tf.function`` (XLA with ``--jit``) computing the forward pass, a mean-square loss
and its gradients with respect to the layer weights, as in training (no optimizer update).
Timing is interleaved: after ``--warmup`` steps of each configuration, every round times
``--steps`` steps of each configuration in turn (the order rotating from round to round), so
that the load of a shared machine falls on all of them alike; the table gives the median and the
spread (min..max) of the per-step times over all rounds.

Memory: unless ``--no-memory``, each configuration is run first in its own subprocess (``--only
NAME``) to get its own peak resident set size (VmHWM from /proc/self/status on Linux, else
``resource.getrusage`` ``ru_maxrss``); the table gives that peak and its increase over the RSS
just before the first step (TensorFlow itself and the input batch are in the baseline).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time

import _common  # benchmarks/_common.py: the --json option and report writer

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

CONFIGS = ("polycg", "conv_eq", "conv_pool")
DESCRIPTIONS = {
    "polycg": "PolyCG(64, 2x2, s2, order 2, rank 1)",
    "conv_eq": "(a) Conv2D(192, 2x2, s2)",
    "conv_pool": "(b) Conv2D(64, 3x3 same)+ReLU+MaxPool2D(2)",
}


def _rss_mb() -> float:
    """Current resident set size in MB (Linux /proc; falls back to the peak elsewhere)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        return _peak_rss_mb()


def _peak_rss_mb() -> float:
    """Peak resident set size of this process in MB.

    On Linux, /proc/self/status VmHWM: the high-water mark of this process's own address space.
    ``getrusage(RUSAGE_SELF).ru_maxrss`` is the fallback; it is not used first because Linux
    carries it over fork + exec, so a subprocess started by a 800 MB parent reports >= 800 MB.
    """
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 2**10
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (2**20 if sys.platform == "darwin" else 2**10)


def build_layer(name: str):
    """The Keras layer (or block) of a configuration."""
    import keras

    from tn_keras.layers import PolyCG

    if name == "polycg":
        return PolyCG(64, kernel_size=2, strides=2, order=2, rank=1)
    if name == "conv_eq":
        return keras.layers.Conv2D(192, 2, strides=2)
    if name == "conv_pool":
        return keras.Sequential([
            keras.layers.Conv2D(64, 3, padding="same", activation="relu"),
            keras.layers.MaxPooling2D(2),
        ])
    raise ValueError(f"unknown configuration {name!r}; expected one of {CONFIGS}")


def make_step(name: str, inputs, jit: bool):
    """A compiled training-style step: forward, loss, gradients wrt the weights."""
    import tensorflow as tf

    layer = build_layer(name)
    layer(inputs[:1])  # build
    weights = layer.trainable_variables

    @tf.function(jit_compile=jit)
    def step(x):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(layer(x)))
        gradients = tape.gradient(loss, weights)
        # Reduce every gradient to one number so that nothing is pruned as unused.
        return loss + tf.add_n([tf.reduce_sum(g) for g in gradients]) * 0.0

    return step, sum(int(tf.size(w)) for w in weights)


def time_steps(step, inputs, count: int) -> list[float]:
    """Seconds per step; ``.numpy()`` waits for the step to finish."""
    times = []
    for _ in range(count):
        start = time.perf_counter()
        step(inputs).numpy()
        times.append(time.perf_counter() - start)
    return times


def random_inputs(batch: int):
    import tensorflow as tf

    return tf.random.stateless_normal((batch, 32, 32, 64), seed=(1, 2))


def run_interleaved(args) -> dict:
    """Time every configuration in this process, interleaved; return per-config statistics."""
    inputs = random_inputs(args.batch)
    steps, params = {}, {}
    for name in CONFIGS:
        steps[name], params[name] = make_step(name, inputs, args.jit)
        time_steps(steps[name], inputs, args.warmup)  # tracing, XLA compilation, allocator
    samples = {name: [] for name in CONFIGS}
    for round_index in range(args.rounds):
        shift = round_index % len(CONFIGS)
        for name in CONFIGS[shift:] + CONFIGS[:shift]:  # A B C, B C A, C A B, ...
            samples[name].extend(time_steps(steps[name], inputs, args.steps))
    return {
        name: {
            "median_ms": 1e3 * statistics.median(values),
            "min_ms": 1e3 * min(values),
            "max_ms": 1e3 * max(values),
            "steps_timed": len(values),
            "params": params[name],
        }
        for name, values in samples.items()
    }


def run_only(args) -> dict:
    """One configuration alone (the memory subprocess): baseline and peak RSS."""
    inputs = random_inputs(args.batch)
    step, _ = make_step(args.only, inputs, args.jit)
    baseline = _rss_mb()
    time_steps(step, inputs, args.warmup + args.steps)
    return {"baseline_rss_mb": baseline, "peak_rss_mb": _peak_rss_mb()}


def measure_memory(args) -> dict:
    """Run each configuration in its own subprocess; return its RSS figures."""
    results = {}
    for name in CONFIGS:
        command = [sys.executable, os.path.abspath(__file__), "--only", name,
                   "--batch", str(args.batch), "--warmup", str(args.warmup),
                   "--steps", str(min(args.steps, 5))] + (["--jit"] if args.jit else [])
        completed = subprocess.run(command, capture_output=True, text=True, check=True)
        results[name] = json.loads(completed.stdout.strip().splitlines()[-1])
    return results


def main(argv=None) -> int:
    parser = _common.parser(__doc__)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps per configuration")
    parser.add_argument("--steps", type=int, default=20, help="timed steps per config per round")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds")
    parser.add_argument("--jit", action="store_true", help="tf.function(jit_compile=True)")
    parser.add_argument("--no-memory", action="store_true",
                        help="skip the per-configuration subprocesses that measure peak RSS")
    parser.add_argument("--only", choices=CONFIGS, help=argparse.SUPPRESS)  # memory subprocess
    args = parser.parse_args(argv)

    if args.only:
        print(json.dumps(run_only(args)))
        return 0

    # The memory subprocesses first, before this process imports TensorFlow.
    memory = {} if args.no_memory else measure_memory(args)
    import tensorflow as tf

    timing = run_interleaved(args)
    polycg = timing["polycg"]["median_ms"]
    ratios = {
        "polycg_over_conv_eq": polycg / timing["conv_eq"]["median_ms"],
        "polycg_over_conv_pool": polycg / timing["conv_pool"]["median_ms"],
    }

    print(f"Training step (forward + gradients wrt weights), input ({args.batch}, 32, 32, 64) "
          f"float32, {'XLA' if args.jit else 'tf.function, no XLA'}; TF {tf.__version__}, "
          f"{os.cpu_count()} CPUs ({platform.machine()}); {args.rounds} interleaved rounds x "
          f"{args.steps} steps after {args.warmup} warmups.")
    header = f"{'configuration':<44} {'params':>8} {'median ms':>10} {'min..max ms':>16}"
    if memory:
        header += f" {'peak RSS MB':>12} {'+ over base':>12}"
    print(header)
    print("-" * len(header))
    for name in CONFIGS:
        row = timing[name]
        line = (f"{DESCRIPTIONS[name]:<44} {row['params']:>8,} {row['median_ms']:>10.1f} "
                f"{row['min_ms']:>7.1f}..{row['max_ms']:<7.1f}")
        if memory:
            peak, base = memory[name]["peak_rss_mb"], memory[name]["baseline_rss_mb"]
            line += f" {peak:>12.0f} {peak - base:>12.0f}"
        print(line)
    print(f"PolyCG / (a) = {ratios['polycg_over_conv_eq']:.2f}  (target <= 1.3)")
    print(f"PolyCG / (b) = {ratios['polycg_over_conv_pool']:.2f}")
    print(f"Peak RSS of this (interleaved timing) process: {_peak_rss_mb():.0f} MB"
          + ("; per-configuration peaks from one subprocess each (--only), baseline = RSS "
             "before the first step." if memory else "."))

    _common.write_report(args.json, {"args": vars(args), "timing": timing, "memory": memory,
                                     "ratios": ratios, "tensorflow": tf.__version__})
    return 0


if __name__ == "__main__":
    sys.exit(main())
