"""The Keras-trained synthesis against the hand-written TensorFlow Adam it replaced.

Until commit 5d7c107 both methods ran Adam by hand inside ``tf.GradientTape`` (``algorithm.py``,
``distribution_matching.py``). This script takes those two files from a git revision of this
repository, runs them and the current code on the same synthetic data and tiny network under
the TensorFlow backend, and reports how far the synthesised float images are apart (grey
levels) and what fraction of uint8 pixels differ, with a reference: how far the *old* code moves
when its start images are perturbed by 1e-3 grey levels (the optimisation's own sensitivity).

    KERAS_BACKEND=tensorflow python benchmarks/distill_equivalence.py --rev 5d7c107

It needs a git checkout (``git show REV:path``).
"""
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

import _common  # benchmarks/_common.py: the --json option and report writer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def old_modules(rev, folder):
    """Write the revision's algorithm.py / distribution_matching.py as importable modules."""
    def show(path):
        return subprocess.run(["git", "show", f"{rev}:{path}"], cwd=ROOT, check=True,
                              capture_output=True, text=True).stdout

    algorithm = show("tn_keras/distill/algorithm.py")
    # The same code with Keras's epsilon placement: Keras's Adam adds epsilon to sqrt(v)
    # before the bias correction, i.e. to sqrt(v_hat) an epsilon / sqrt(1 - beta2^t).
    textbook = "p = p - learning_rate * m_hat / (tf.sqrt(v_hat) + ADAM_EPSILON)"
    keras_eps = ("p = p - learning_rate * m_hat / (tf.sqrt(v_hat) + ADAM_EPSILON / "
                 "tf.sqrt(1.0 - tf.pow(ADAM_BETA2, step)))")
    assert textbook in algorithm, "the revision has no hand-written Adam step"
    sources = {"old_algorithm": algorithm,
               "old_algorithm_keras_epsilon": algorithm.replace(textbook, keras_eps),
               "old_distribution": show("tn_keras/distill/distribution_matching.py").replace(
                   "from tn_keras.distill.algorithm import", "from old_algorithm import")}
    for name, text in sources.items():
        with open(os.path.join(folder, f"{name}.py"), "w") as f:
            f.write(text)
    sys.path.insert(0, folder)
    import old_algorithm
    import old_algorithm_keras_epsilon
    import old_distribution

    return old_algorithm, old_algorithm_keras_epsilon, old_distribution


def compare(old, new, start):
    d = np.abs(old - new)
    rounded = np.clip(np.round(old), 0, 255) != np.clip(np.round(new), 0, 255)
    return dict(moved_max=round(float(np.abs(old - start).max()), 3),
                abs_diff_max=float(d.max()), abs_diff_mean=float(d.mean()),
                uint8_pixels_differ_percent=round(100 * float(rounded.mean()), 3))


def embedding_rows(old_algorithm, old_keras_epsilon, model, x, y):
    from tn_keras.distill.config import DistillConfig
    from tn_keras.distill.embedding_matching import Synthesiser
    from tn_keras.distill.groups import group_start, make_groups

    group_of, labels = make_groups(y, 2, 0, 1)
    start = group_start(x, group_of, len(labels), "mean")
    rows = {}
    for steps, lr in [(40, 0.25), (100, 2.0)]:
        old = old_algorithm.Synthesiser(model).synthesise(x, group_of, labels, steps, lr, 0.1)
        new = Synthesiser(model).synthesise(
            x, group_of, labels, DistillConfig(steps=steps, learning_rate=lr).resolved())
        row = compare(old, new, start)
        same_epsilon = old_keras_epsilon.Synthesiser(model).synthesise(x, group_of, labels,
                                                                       steps, lr, 0.1)
        row["old_with_keras_epsilon_vs_new"] = compare(same_epsilon, new, start)
        rows[f"embedding steps={steps} lr={lr}"] = row
    return rows


def distribution_rows(old_distribution, x, y):
    from tn_keras.distill import distribution_matching

    rows = {}
    for name, every, steps in [("all images drawn every step", 8, 2),
                               ("all images drawn every step", 8, 50),
                               ("images subsampled", 2, 50)]:
        start = x[::every].astype(np.float32)
        args = (y[::every], x, y, steps, 2.55)
        old = old_distribution.DistributionMatcher(x.shape[1:]).match(
            start, *args, np.random.default_rng(0))
        new = distribution_matching.match(start, *args, np.random.default_rng(0))
        nudged = old_distribution.DistributionMatcher(x.shape[1:]).match(
            start + 1e-3, *args, np.random.default_rng(0))
        row = compare(old, new, start)
        row["old_vs_old_start_plus_1e-3"] = compare(old, nudged, start)
        rows[f"distribution {steps} steps, {name} ({len(start)} images)"] = row
    return rows


def main(argv=None):
    p = _common.parser(__doc__)
    p.add_argument("--rev", default="5d7c107", help="a revision with the hand-written Adam")
    args = p.parse_args(argv)
    import keras

    if keras.backend.backend() != "tensorflow":
        raise SystemExit("Run under KERAS_BACKEND=tensorflow: the old code is TensorFlow.")
    sys.path.insert(0, os.path.join(ROOT, "tests"))
    from test_distill import synthetic_data, tiny_model

    x, y = synthetic_data(per_class=200)
    with tempfile.TemporaryDirectory() as folder:
        old_algorithm, old_keras_epsilon, old_distribution = old_modules(args.rev, folder)
        report = dict(rev=args.rev, images=int(len(x)),
                      **embedding_rows(old_algorithm, old_keras_epsilon, tiny_model(), x, y),
                      **distribution_rows(old_distribution, x, y))
    print(json.dumps(report, indent=2))
    _common.write_report(args.json, report)


if __name__ == "__main__":
    main()
