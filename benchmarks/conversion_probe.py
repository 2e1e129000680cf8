"""Can the trained GELU twin become a polynomial network? Conversion, measured step by step.

The cheapest way to a strong polynomial network would be to convert a trained network with
activations (the *teacher*, `cifar_convnet_fast_gelu.e10`) instead of training one: copy every
shared weight into the activation-free skeleton (`cifar_taylornet_fast`, ``product=
"quadratic"``), start each polynomial step as the per-channel quadratic closest to its GELU on
the values that GELU received (`tn_keras.layers.activation_fit.quadratic_fit`), and fine-tune
with the teacher's predictions as soft targets. Low-degree replacements of ReLU do this in
the private-inference literature. This script measures each step on CIFAR-10's 1,000 lossless
test images (needs ``TN_KERAS_DATA``):

    python benchmarks/conversion_probe.py --json conversion.json

1. the teacher;
2. the converted network with the teacher's max-pooling and BatchNorm statistics (a probe:
   max-pooling is not a polynomial), with and without a quadratic after the whitening, and
   the growth of its activations layer by layer against the teacher's;
3. average pooling, whose BatchNorm statistics must be re-estimated: in training mode (batch
   statistics, the usual way) or robustly (median and interquartile range, layer by layer);
   the GELU network with average pooling as the reference;
4. fine-tuning the robustly recalibrated network on soft targets, BatchNorm frozen (or in
   training mode, ``--batch-norm train``).

``--curvature-scale s`` multiplies every fitted ``c2`` by ``s``: a flatter quadratic, whose
growth on the rare large inputs compounds less through the seven steps. ``--epochs E``
fine-tunes for E augmented passes over the whole training set instead of ``--fine-tune-steps``.

The pieces live in the library (`tn_keras.training.conversion`), and the trainer runs the
whole route as the recipe ``gelu_conversion`` (``tn-keras train cifar_taylornet_converted``);
this script keeps the probes that the recipe does not make.
"""
import dataclasses
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
import _common  # noqa: E402


def fit_steps(teacher, student, images, linear=(), curvature_scale=1.0):
    """`tn_keras.training.conversion.convert`, except that the steps named in ``linear`` keep
    only ``c0 + c1 z``. Returns ``{step: relative rms error of the fit as set}``."""
    import keras
    from tn_keras.layers.activation_fit import gelu
    from tn_keras.layers.activation_fit import quadratic_fit
    from tn_keras.training.conversion import CONVERSIONS
    from tn_keras.training.conversion import FIT_SAMPLES
    from tn_keras.training.conversion import activation_pairs
    from tn_keras.training.conversion import set_quadratic
    from tn_keras.zoo.saving import transfer_body

    transfer_body(teacher, student, include_head=True)
    pairs = activation_pairs(teacher, student, CONVERSIONS["gelu_quadratic"])
    feed = keras.Model(teacher.inputs, [layer.input for layer, _ in pairs])
    rng = np.random.default_rng(0)
    errors = {}
    for (_, step), z in zip(pairs, feed.predict(images, batch_size=250, verbose=0)):
        z = z.reshape(-1, z.shape[-1]).astype(np.float64)
        z = z[rng.choice(len(z), min(FIT_SAMPLES, len(z)), replace=False)]
        c = quadratic_fit(z)
        if step.name in linear:
            a = np.stack([np.ones_like(z), z], -1)
            for k in range(z.shape[1]):
                c[k, :2] = np.linalg.lstsq(a[:, k], gelu(z[:, k]), rcond=None)[0]
                c[k, 2] = 0.0
        c[:, 2] *= curvature_scale
        set_quadratic(step, c)
        fitted = c[:, 0] + c[:, 1] * z + c[:, 2] * z * z
        errors[step.name] = round(float(np.sqrt(np.mean((fitted - gelu(z)) ** 2))
                                        / np.sqrt(np.mean(gelu(z) ** 2))), 3)
    return errors


def recalibrate_in_training_mode(model, images, batch_size=500):
    """The usual re-estimation: forward passes with batch statistics (momentum 0.6)."""
    for start in range(0, len(images) - batch_size + 1, batch_size):
        model(images[start:start + batch_size], training=True)


def accuracy(model, x, y):
    out = model.predict(x, batch_size=500, verbose=0)
    finite = np.isfinite(out).all(axis=-1)
    return {"accuracy": round(float(np.mean((np.argmax(out, -1) == y) & finite)), 4),
            "finite": round(float(np.mean(finite)), 4)}


def growth(teacher, student, images):
    """Per step: the largest |activation| of the student against the teacher's."""
    import keras

    from tn_keras.training.conversion import CONVERSIONS
    from tn_keras.training.conversion import activation_pairs

    pairs = activation_pairs(teacher, student, CONVERSIONS["gelu_quadratic"])
    t = keras.Model(teacher.inputs, [a.output for a, _ in pairs]).predict(images, verbose=0)
    s = keras.Model(student.inputs, [b.output for _, b in pairs]).predict(images, verbose=0)
    return {b.name: {"teacher_max": float(np.abs(u).max()), "student_max": float(np.abs(v).max())}
            for (_, b), u, v in zip(pairs, t, s)}


@dataclasses.dataclass(frozen=True)
class FineTune:
    """How stage 4 fine-tunes (the command line's options of the same names)."""

    steps: int
    batch_size: int
    learning_rate: float
    freeze_batch_norm: bool = True
    rounds: int = 3  # evaluations, after equal parts of the steps
    recalibrate: bool = False  # robust BatchNorm statistics before each evaluation

    @classmethod
    def from_args(cls, args):
        return cls(args.fine_tune_steps, args.batch_size, args.learning_rate,
                   args.batch_norm == "frozen", args.rounds, args.recalibrate)


def compile_for_soft_targets(student, settings):
    """BatchNorm frozen (statistics and shifts) or in training mode; Nesterov SGD on a cosine
    schedule, clipped; cross-entropy against the teacher's probabilities."""
    import keras

    from tn_keras.training.conversion import batch_norms

    for layer in batch_norms(student):
        layer.trainable = not settings.freeze_batch_norm
    schedule = keras.optimizers.schedules.CosineDecay(settings.learning_rate, settings.steps)
    student.compile(optimizer=keras.optimizers.SGD(schedule, momentum=0.9, nesterov=True,
                                                   global_clipnorm=5.0),
                    loss="categorical_crossentropy")


def fine_tune(teacher, student, x, test, settings):
    """Train ``student`` on the teacher's predictions for ``x`` (cycled in order); the loss and
    the accuracy on ``test = (x, y)`` after each of ``settings.rounds`` equal parts, with
    BatchNorm's statistics first re-estimated robustly when ``settings.recalibrate`` (training
    mode's moving averages follow the last batches)."""
    from tn_keras.training.conversion import robust_batch_norm_statistics

    targets = teacher.predict(x, batch_size=500, verbose=0)
    compile_for_soft_targets(student, settings)
    rows, part = [], settings.steps * settings.batch_size // settings.rounds
    for k in range(settings.rounds):
        index = np.arange(k * part, (k + 1) * part) % len(x)
        history = student.fit(x[index], targets[index], batch_size=settings.batch_size,
                              epochs=1, verbose=0)
        if settings.recalibrate:
            robust_batch_norm_statistics(student, x[:1000])
        rows.append({"steps": (k + 1) * settings.steps // settings.rounds,
                     "loss": float(history.history["loss"][-1]), **accuracy(student, *test)})
        print("fine-tune", rows[-1], flush=True)
    return rows


def fine_tune_epochs(teacher, student, x, test, settings, epochs, save_dir=None, seed=0):
    """Fine-tune for ``epochs`` passes over all of ``x`` with the fast recipe's augmentation
    (reflection-padded 2-pixel shifts, each image flipped in alternate epochs), against the
    teacher's probabilities *for the augmented images*; robust BatchNorm statistics and the
    test accuracy after every epoch. With ``save_dir``, each epoch's weights are written
    there (``epoch-K.weights.h5``) and a rerun continues after the last one written (the
    schedule's position restored; the momentum starts again)."""
    from tn_keras.training.conversion import robust_batch_norm_statistics

    from tn_keras.datasets.augment import base_flips
    from tn_keras.datasets.augment import flip_translate

    steps_per_epoch = -(-len(x) // settings.batch_size)
    settings = dataclasses.replace(settings, steps=epochs * steps_per_epoch)
    compile_for_soft_targets(student, settings)
    flips, done, rows = base_flips(seed, len(x)), 0, []
    if save_dir:
        os.makedirs(save_dir, exist_ok=True)
        saved = sorted(int(f[6:-11]) for f in os.listdir(save_dir)
                       if f.startswith("epoch-") and f.endswith(".weights.h5"))
        if saved:
            done = saved[-1]
            student.load_weights(os.path.join(save_dir, f"epoch-{done}.weights.h5"))
            student.optimizer.build(student.trainable_variables)
            student.optimizer.iterations.assign(done * steps_per_epoch)
            print(f"resumed after epoch {done}", flush=True)
    for epoch in range(done, epochs):
        started = time.perf_counter()
        rng = np.random.default_rng([seed, epoch])
        order = rng.permutation(len(x))
        images = flip_translate(x[order], flips[order] ^ bool(epoch % 2), rng)
        targets = teacher.predict(images, batch_size=500, verbose=0)
        history = student.fit(images, targets, batch_size=settings.batch_size, epochs=1,
                              shuffle=False, verbose=0)
        del images
        robust_batch_norm_statistics(student, x[:1000])
        rows.append({"epoch": epoch + 1, "loss": float(history.history["loss"][-1]),
                     "seconds": round(time.perf_counter() - started, 1),
                     **accuracy(student, *test)})
        print("epoch", rows[-1], flush=True)
        if save_dir:
            student.save_weights(os.path.join(save_dir, f"epoch-{epoch + 1}.weights.h5"))
    return rows


def static_stages(report, teacher, converted, x, x_test, y_test):
    """Stages 2 and 3 (module docstring) before any training, into ``report``."""
    from tn_keras.zoo.cifar_taylornet_fast import WIDTHS
    from tn_keras.zoo.cifar_taylornet_fast import fast_network
    from tn_keras.zoo.saving import transfer_body

    student, report["fit_errors"] = converted("max")
    report["quadratic_max_pooling"] = accuracy(student, x_test, y_test)
    report["growth_max_pooling"] = growth(teacher, student, x[:500])
    student, _ = converted("max", linear=("whiten_t",))
    report["quadratic_max_pooling_linear_after_whitening"] = accuracy(student, x_test, y_test)
    print(report, flush=True)

    gelu_average = fast_network(WIDTHS["full"], None, pooling="average")
    transfer_body(teacher, gelu_average, include_head=True)
    recalibrate_in_training_mode(gelu_average, x[:10_000])
    report["gelu_average_pooling_recalibrated"] = accuracy(gelu_average, x_test, y_test)
    student, _ = converted("average")
    recalibrate_in_training_mode(student, x[:10_000])
    report["quadratic_average_pooling_recalibrated"] = accuracy(student, x_test, y_test)


def main():
    p = _common.parser(__doc__)
    p.add_argument("--fine-tune-steps", type=int, default=120)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--learning-rate", type=float, default=0.01)
    p.add_argument("--epochs", type=int, default=0,
                   help="fine-tune for this many augmented passes over the whole training "
                        "set instead of --fine-tune-steps")
    p.add_argument("--save-dir", help="with --epochs: write each epoch's weights here and "
                                      "continue after the last one on a rerun")
    p.add_argument("--rounds", type=int, default=3,
                   help="evaluate after each of this many equal parts of the fine-tuning")
    p.add_argument("--recalibrate", action="store_true",
                   help="re-estimate BatchNorm's statistics robustly before each evaluation")
    p.add_argument("--batch-norm", choices=("frozen", "train"), default="frozen",
                   help="fine-tune with BatchNorm frozen or in training mode")
    p.add_argument("--only-fine-tune", action="store_true",
                   help="skip stages 2 and 3 (the probes with max-pooling, training-mode "
                        "recalibration and the GELU reference)")
    p.add_argument("--curvature-scale", type=float, default=1.0,
                   help="multiply every fitted c2 by this (1: the least-squares fit)")
    args = p.parse_args()
    import keras
    from tn_keras import datasets
    from tn_keras import zoo
    from tn_keras.zoo.cifar_taylornet_fast import WIDTHS
    from tn_keras.training.conversion import robust_batch_norm_statistics
    from tn_keras.zoo.cifar_taylornet_fast import fast_network

    started = time.perf_counter()
    teacher = zoo.load("cifar_convnet_fast_gelu")
    x, _ = datasets.load("cifar10", "train")
    x_test, y_test = datasets.load("cifar10", "test_lossless")
    x_test = x_test.astype(np.float32)
    n = len(x) if args.epochs else min(max(args.fine_tune_steps * args.batch_size, 10_000),
                                         len(x))
    x = x[np.random.default_rng(0).permutation(len(x))[:n]].astype(np.float32)
    report = {"settings": {k: v for k, v in vars(args).items() if k != "json"},
              "teacher": accuracy(teacher, x_test, y_test)}
    print(report, flush=True)

    def converted(pooling, linear=()):
        keras.utils.set_random_seed(0)
        student = fast_network(WIDTHS["full"], "quadratic", pooling=pooling)
        return student, fit_steps(teacher, student, x[:2000], linear=linear,
                                  curvature_scale=args.curvature_scale)

    if not args.only_fine_tune:
        static_stages(report, teacher, converted, x, x_test, y_test)
    student, _ = converted("average")
    robust_batch_norm_statistics(student, x[:1000])
    report["quadratic_average_pooling_robust"] = accuracy(student, x_test, y_test)
    print(report, flush=True)
    if args.epochs:
        report["fine_tune_epochs"] = fine_tune_epochs(
            teacher, student, x, (x_test, y_test), FineTune.from_args(args), args.epochs,
            args.save_dir)
        x_all, y_all = datasets.load("cifar10", "test")
        report["final_test_all"] = accuracy(student, x_all.astype(np.float32), y_all)
        if args.save_dir:
            student.save(os.path.join(args.save_dir, "student.keras"))
    elif args.fine_tune_steps:
        report["fine_tune"] = fine_tune(teacher, student, x, (x_test, y_test),
                                        FineTune.from_args(args))
    report["seconds"] = round(time.perf_counter() - started, 1)
    print(report)
    _common.write_report(args.json, report)


if __name__ == "__main__":
    main()
