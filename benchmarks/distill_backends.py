"""Benchmark: one distillation level of the 8x8 digits under each Keras backend, in one run.

Every backend runs in its own process (``KERAS_BACKEND`` is read once, at import): the shipped
``digits_taylornet`` distils ``--per-class`` images per class of scikit-learn's digits to half as
many, once per method, with the methods' default steps. Reported per backend and method: the
level's wall time (it includes building and compiling the synthesis model, as every level of a
real run does), its ratio to the TensorFlow backend measured in the same run, and the child's
peak resident memory. The machine's other load matters on a shared CPU: it is reported too.

    python benchmarks/distill_backends.py --json distill_backends.json
"""
import json
import os
import subprocess
import sys

from tn_keras.distill import config

import _common  # benchmarks/_common.py: the --json option and report writer

BACKENDS = ("tensorflow", "jax", "torch")

CHILD = """
import json, resource, sys, time
import keras, numpy as np
from sklearn.datasets import load_digits
from tn_keras import distill, zoo

per_class, methods = int(sys.argv[1]), sys.argv[2].split(",")
digits = load_digits()
x = np.round(digits.images[..., None] * (255 / 16)).astype("uint8")
model = zoo.load("digits_taylornet", compile=False)
row = {"backend": keras.backend.backend()}
for method in methods:
    settings = distill.DistillConfig(levels=1, per_class=per_class, method=method)
    levels = distill.distill(model, x, digits.target, settings=settings)
    row[method] = {"level_1_seconds": round(levels[1].wall_time_seconds, 2),
                   "images": int(len(levels[1].y)), "steps": settings.resolved().steps}
row["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
print("ROW " + json.dumps(row))
"""


def run_backend(backend, per_class, methods):
    env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3",
               TN_KERAS_OFFLINE="1")
    result = subprocess.run([sys.executable, "-c", CHILD, str(per_class), ",".join(methods)],
                            capture_output=True, text=True, env=env, timeout=1800)
    rows = [line for line in result.stdout.splitlines() if line.startswith("ROW ")]
    if result.returncode != 0 or not rows:
        return {"backend": backend, "error": result.stderr[-2000:]}
    return json.loads(rows[-1][len("ROW "):])


def main(argv=None):
    p = _common.parser(__doc__)
    p.add_argument("--per-class", type=int, default=160, help="level 0 images per class")
    p.add_argument("--methods", default=",".join(config.METHODS))
    p.add_argument("--backends", default=",".join(BACKENDS))
    args = p.parse_args(argv)
    methods = args.methods.split(",")
    rows = [run_backend(b, args.per_class, methods) for b in args.backends.split(",")]
    baseline = next((r for r in rows if r["backend"] == "tensorflow" and "error" not in r), None)
    for row in rows:
        for method in methods:
            if baseline and method in row:
                row[method]["ratio_to_tensorflow"] = round(
                    row[method]["level_1_seconds"] / baseline[method]["level_1_seconds"], 2)
    report = dict(benchmark="one distillation level of the digits per backend",
                  per_class=args.per_class, cpu_count=os.cpu_count(),
                  load_average_at_end=os.getloadavg(), rows=rows)
    print(json.dumps(report, indent=2))
    _common.write_report(args.json, report)


if __name__ == "__main__":
    main()
