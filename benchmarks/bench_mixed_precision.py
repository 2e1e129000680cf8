"""What ``--mixed-precision`` (bfloat16 compute, float32 variables) does to a TaylorNet.

Usage::

    KERAS_BACKEND=jax TN_KERAS_DATA=/path/to/data python benchmarks/bench_mixed_precision.py \\
        --model mnist_taylornet --epochs 3 --max-train-examples 10000 [--json out.json]

Trains the model twice with the same seed and recipe through `tn_keras.training.train`, in
float32 and under ``mixed_bfloat16``, and reports for each: test accuracy, final training
loss and accuracy, training time. Then the bfloat16-trained weights are evaluated twice on the
test split, with bfloat16 compute (as trained) and with float32 compute: the top-1 agreement and
the largest difference of the softmax outputs isolate what bfloat16 arithmetic does to the
products of a degree-2^L polynomial, apart from what it did to training.
"""
from __future__ import annotations

import dataclasses
import json
import sys
import tempfile

import numpy as np

import _common  # benchmarks/_common.py: the --json option and report writer


def _config(args):
    """The run's `TrainConfig`, as ``tn-keras train`` builds it (the policy is set per run)."""
    from tn_keras.training import TrainConfig

    return TrainConfig(epochs=args.epochs, seed=args.seed,
                       max_train_examples=args.max_train_examples, verbose=0)


def _train(args, out, mixed_precision):
    from tn_keras.training import train

    config = dataclasses.replace(_config(args), out=out, mixed_precision=mixed_precision)
    model, manifest = train(args.model, config)
    t = manifest["training"]
    return model, {"test_accuracy": manifest["metrics"]["test_accuracy"],
                   "final_train_loss": t["final_train_loss"],
                   "final_train_accuracy": t["final_train_accuracy"],
                   "training_seconds": t["wall_time_seconds"], "command": t["command"]}


def _compute_dtype_effect(model_bf16, name):
    """Top-1 agreement and output difference of the same weights in bf16 vs float32 compute."""
    from tn_keras import datasets, zoo

    float32 = zoo.build(name)
    float32.set_weights(model_bf16.get_weights())
    x, y = datasets.load(zoo.info(name).dataset, "test")
    x = x.astype("float32")
    p16 = np.asarray(model_bf16.predict(x, batch_size=500, verbose=0), np.float32)
    p32 = np.asarray(float32.predict(x, batch_size=500, verbose=0), np.float32)
    return {"accuracy_bf16_compute": float(np.mean(p16.argmax(1) == y)),
            "accuracy_float32_compute": float(np.mean(p32.argmax(1) == y)),
            "top1_agreement": float(np.mean(p16.argmax(1) == p32.argmax(1))),
            "max_abs_softmax_difference": float(np.abs(p16 - p32).max())}


def _parse(argv=None):
    from tn_keras.training.config import DEFAULT_SEED

    parser = _common.parser(__doc__)
    parser.add_argument("--model", default="mnist_taylornet")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--max-train-examples", type=int, default=10000)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = _parse(argv)

    import keras

    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        _, rows["float32"] = _train(args, f"{tmp}/f32", False)
        model_bf16, rows["mixed_bfloat16"] = _train(args, f"{tmp}/bf16", True)
    rows["same_weights"] = _compute_dtype_effect(model_bf16, args.model)
    print(f"{args.model}, {args.epochs} epochs on {args.max_train_examples} images, seed "
          f"{args.seed}, backend {keras.backend.backend()}")
    for policy in ("float32", "mixed_bfloat16"):
        r = rows[policy]
        print(f"{policy:15s} test {100 * r['test_accuracy']:.2f} %  train "
              f"{100 * r['final_train_accuracy']:.2f} % (loss {r['final_train_loss']:.4f})  "
              f"{r['training_seconds']:.0f} s")
    print("bf16-trained weights:", json.dumps(rows["same_weights"]))
    _common.write_report(args.json, {"args": vars(args), "rows": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
