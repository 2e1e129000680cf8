"""tn_keras.training.conversion: a GELU network converted into a quadratic one, checked against
NumPy, and the ``gelu_conversion`` kind of recipe run end to end on a tiny synthetic CIFAR."""
import dataclasses
import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

from tn_keras.datasets.pipeline import make_dataset
from tn_keras.layers.activation_fit import gelu
from tn_keras.training import conversion
from tn_keras.zoo.cifar_taylornet_fast import fast_network

sys.path.insert(0, os.path.dirname(__file__))
from _tiny_data import write_tiny_cifar  # noqa: E402

ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
WIDTHS = (4, 8, 8)


def _images(n=12, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, 32, 32, 3)).astype(np.float32)


def _teacher_and_student():
    keras.utils.set_random_seed(1)
    teacher = fast_network(WIDTHS, None, name="teacher")
    student = fast_network(WIDTHS, "quadratic", name="student", pooling="average")
    return teacher, student


@pytest.mark.backend_neutral
def test_set_quadratic_makes_each_channel_its_own_quadratic():
    from tn_keras.layers import PolyCG

    step = PolyCG(filters=3, kernel_size=1, strides=1, order=2, rank=1)
    z = np.random.default_rng(0).normal(size=(2, 4, 4, 3)).astype(np.float32)
    step(z)
    c = np.array([[0.1, 0.5, 0.2], [-0.3, 1.0, 0.0], [0.0, -2.0, 0.7]])
    conversion.set_quadratic(step, c)
    want = c[:, 0] + c[:, 1] * z + c[:, 2] * z * z
    np.testing.assert_allclose(np.asarray(step(z)), want, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match=r"coefficients must have shape \(3, 3\)"):
        conversion.set_quadratic(step, c[:2])


@pytest.mark.backend_neutral
def test_robust_statistics_are_the_median_and_iqr_of_each_input_and_ignore_outliers():
    inputs = keras.Input((5,))
    bn = keras.layers.BatchNormalization(name="bn")
    model = keras.Model(inputs, bn(keras.layers.Dense(5, name="dense")(inputs)))
    x = np.random.default_rng(0).normal(size=(400, 5)).astype(np.float32)
    x[:3] *= 1e6  # three exploding images move the mean, not the median
    conversion.robust_batch_norm_statistics(model, x)
    z = x.astype(np.float64) @ model.get_layer("dense").kernel.numpy().astype(np.float64)
    q1, q2, q3 = np.percentile(z, [25, 50, 75], axis=0)
    np.testing.assert_allclose(bn.moving_mean.numpy(), q2, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(bn.moving_variance.numpy(), ((q3 - q1) / 1.349) ** 2,
                               rtol=1e-4)


@pytest.mark.backend_neutral
def test_convert_copies_the_teacher_and_fits_every_gelu_by_least_squares():
    teacher, student = _teacher_and_student()
    images = _images()
    errors = conversion.convert(teacher, student, images, curvature_scale=1.0)
    # Every activation but the classifier's softmax became a step, fitted well.
    assert sorted(errors) == sorted(
        layer.name[:-len("_gelu")] + "_t" for layer in teacher.layers
        if layer.name.endswith("_gelu"))
    assert len(errors) == 7 and max(errors.values()) < 0.2
    for name in ("group1_conv1", "group3_conv2", "classifier", "whiten"):
        for a, b in zip(teacher.get_layer(name).get_weights(),
                        student.get_layer(name).get_weights()):
            np.testing.assert_array_equal(a, b)
    # The fit, independently: per channel, lstsq of GELU on [1, z, z^2] over every site (the
    # tiny batch has fewer sites than conversion.FIT_SAMPLES, so all are used).
    z = keras.Model(teacher.inputs, teacher.get_layer("group2_1_gelu").input).predict(
        images, verbose=0).astype(np.float64)
    z = z.reshape(-1, z.shape[-1])
    step = student.get_layer("group2_1_t")
    for k in range(z.shape[1]):
        a = np.stack([np.ones_like(z[:, k]), z[:, k], z[:, k] ** 2], -1)
        c = np.linalg.lstsq(a, gelu(z[:, k]), rcond=None)[0]
        np.testing.assert_allclose(step.bias.numpy()[k], c[0], rtol=1e-3, atol=1e-4)
        np.testing.assert_allclose(step.kernel.numpy()[0, 0, k, k], c[1], rtol=1e-3)
        np.testing.assert_allclose(step.factor_kernel.numpy()[0, 0, k, z.shape[1] + k], c[2],
                                   rtol=1e-3, atol=1e-5)


@pytest.mark.backend_neutral
def test_curvature_scale_multiplies_only_c2():
    teacher, one = _teacher_and_student()
    images = _images()
    conversion.convert(teacher, one, images, curvature_scale=1.0)
    half = fast_network(WIDTHS, "quadratic", name="half", pooling="average")
    conversion.convert(teacher, half, images, curvature_scale=0.5)
    a, b = one.get_layer("group1_2_t"), half.get_layer("group1_2_t")
    n = a.filters
    np.testing.assert_allclose(b.bias.numpy(), a.bias.numpy(), rtol=1e-6)
    np.testing.assert_allclose(b.kernel.numpy(), a.kernel.numpy(), rtol=1e-6)
    np.testing.assert_allclose(b.factor_kernel.numpy(), np.where(
        np.eye(n, 2 * n, k=n)[None, None] > 0, 0.5 * a.factor_kernel.numpy(),
        a.factor_kernel.numpy()), rtol=1e-6)


@pytest.mark.backend_neutral
def test_a_student_without_the_teachers_steps_is_named():
    teacher, _ = _teacher_and_student()
    gated = fast_network(WIDTHS, "gated", name="gated")
    with pytest.raises(ValueError, match="'whiten_gelu' has no step 'whiten_t' in 'gated'"):
        conversion.convert(teacher, gated, _images())
    with pytest.raises(ValueError, match="Unknown conversion 'relu'.*gelu_quadratic"):
        conversion.get_conversion("relu")


@pytest.mark.backend_neutral
def test_teacher_targets_are_the_teachers_probabilities_for_the_batch():
    teacher, _ = _teacher_and_student()
    x, y = _images(8), np.arange(8) % 10
    batches = make_dataset(x, y, 4, pipeline="numpy")
    targets = conversion.with_teacher_targets(batches, teacher)
    assert len(targets) == 2
    images, probabilities = targets[1]
    np.testing.assert_allclose(probabilities, teacher.predict(images, verbose=0), rtol=1e-5,
                               atol=1e-6)
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        ds = conversion.with_teacher_targets(tf.data.Dataset.from_tensor_slices(
            (x, y)).batch(4), teacher)
        images, probabilities = next(iter(ds))
        np.testing.assert_allclose(probabilities.numpy(), teacher.predict(
            images.numpy(), verbose=0), rtol=1e-5, atol=1e-6)


# --- the recipe end to end: train a tiny GELU teacher, then convert it ------------------------

# Both end-to-end scripts start from the same tiny GELU teacher, trained once per home folder.
_TINY_TEACHER = """
import dataclasses, json, sys
import keras
import numpy as np
from tn_keras import zoo
from tn_keras.training import train
from tn_keras.zoo.cifar_taylornet_fast import FAST_RECIPE, fast_network

def teacher(input_shape=(32, 32, 3), num_classes=10, name="tiny_gelu",
            classifier_activation="softmax"):
    return fast_network((4, 8, 8), None, input_shape, num_classes, classifier_activation, name)

def train_tiny_teacher(data, small):
    zoo.register("tiny_gelu", dataset="cifar10", parameters=None,
                 recipe=dataclasses.replace(FAST_RECIPE, epochs=1, **small))(teacher)
    train("tiny_gelu", tag="t1", data_dir=data, seed=0, verbose=0, resume=True)
"""

_SCRIPT = _TINY_TEACHER + """
from tn_keras.zoo.cifar_taylornet_fast import CONVERSION_RECIPE

def student(input_shape=(32, 32, 3), num_classes=10, name="tiny_converted",
            classifier_activation="softmax"):
    return fast_network((4, 8, 8), "quadratic", input_shape, num_classes,
                        classifier_activation, name, pooling="average")

class Interrupt(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        raise SystemExit(3)

data, out, interrupt, resume = sys.argv[1], sys.argv[2], sys.argv[3] == "1", sys.argv[4] == "1"
small = dict(batch_size=32, whitening_images=64, test_time_augmentation=False,
             statistics_images=48)
zoo.register("tiny_converted", dataset="cifar10", parameters=None,
             recipe=dataclasses.replace(CONVERSION_RECIPE, epochs=2, teacher="tiny_gelu.t1",
                                        **small))(student)
train_tiny_teacher(data, small)
model, manifest = train("tiny_converted", out=out, data_dir=data, seed=0, verbose=0,
                        resume=resume, callbacks=[Interrupt()] if interrupt else [])
np.savez(out + "/weights.npz", *model.get_weights())
x = np.load(data + "/cifar10.npz")["x_train"][:48].astype("float32")
bn = model.get_layer("group3_bn2")
z = keras.Model(model.inputs, bn.input).predict(x, verbose=0).reshape(-1, bn.input.shape[-1])
print(json.dumps({"manifest": manifest.to_dict(), "median": np.median(z, 0).tolist(),
                  "moving_mean": bn.moving_mean.numpy().tolist()}))
"""


@pytest.mark.backend_neutral
def test_the_conversion_recipe_trains_on_the_teacher_records_it_and_resumes_exactly(tmp_path):
    write_tiny_cifar(tmp_path)
    env = dict(ENV, TN_KERAS_HOME=str(tmp_path / "home"), TN_KERAS_OFFLINE="1")

    def run(out, interrupt=False, resume=False, code=0):
        result = subprocess.run([sys.executable, "-c", _SCRIPT, str(tmp_path), out,
                                 str(int(interrupt)), str(int(resume))],
                                capture_output=True, text=True, env=env, timeout=600)
        assert result.returncode == code, result.stderr[-3000:]
        return result.stdout

    whole, split = str(tmp_path / "whole"), str(tmp_path / "split")
    report = json.loads(run(whole).strip().splitlines()[-1])
    manifest = report["manifest"]
    recipe = manifest["training"]["recipe"]
    assert recipe["teacher"] == "tiny_gelu.t1" and recipe["conversion"] == "gelu_quadratic"
    assert recipe["optimizer"] == "nesterov_cosine"
    # The converted model starts from the teacher: its provenance names it.
    assert manifest["provenance"]["model"] == "tiny_gelu.t1"
    # The last epoch ended with robust statistics (median of each BatchNorm's input).
    np.testing.assert_allclose(report["moving_mean"], report["median"], rtol=1e-3, atol=1e-4)
    # Killed after the first epoch and resumed: the uninterrupted run's weights, bit for bit
    # (the conversion is redone, then the backup's weights, statistics included, replace it).
    run(split, interrupt=True, code=3)
    run(split, resume=True)
    one, two = np.load(whole + "/weights.npz"), np.load(split + "/weights.npz")
    assert len(one.files) == len(two.files) > 0
    for key in one.files:
        np.testing.assert_array_equal(one[key], two[key], err_msg=key)


_KD_SCRIPT = _TINY_TEACHER + """
from tn_keras.zoo.cifar_taylornet import CIFAR_TEACHER_RECIPE

def student(input_shape=(32, 32, 3), num_classes=10, name="tiny_student",
            classifier_activation="softmax"):
    return fast_network((4, 8, 8), "gated", input_shape, num_classes, classifier_activation,
                        name)

data, out = sys.argv[1], sys.argv[2]
small = dict(batch_size=32, whitening_images=64, test_time_augmentation=False)
zoo.register("tiny_student", dataset="cifar10", parameters=None,
             recipe=dataclasses.replace(CIFAR_TEACHER_RECIPE, teacher="tiny_gelu.t1",
                                        **small))(student)
train_tiny_teacher(data, small)
model, manifest = train("tiny_student", out=out, data_dir=data, seed=0, verbose=0,
                        time_budget="20s")
print(json.dumps(manifest.to_dict()))
"""


def test_a_teacher_without_conversion_trains_a_student_under_a_time_budget(tmp_path):
    """A teacher alone (``cifar_teacher``): the student keeps its own start and learns the
    teacher's probabilities; the planner times each step with the teacher's forward pass in it
    (it used to step on the labels, whose shape the teacher's loss refuses)."""
    write_tiny_cifar(tmp_path)
    env = dict(ENV, TN_KERAS_HOME=str(tmp_path / "home"), TN_KERAS_OFFLINE="1")
    result = subprocess.run([sys.executable, "-c", _KD_SCRIPT, str(tmp_path),
                             str(tmp_path / "kd")], capture_output=True, text=True, env=env,
                            timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    manifest = json.loads(result.stdout.strip().splitlines()[-1])
    recipe = manifest["training"]["recipe"]
    assert recipe["teacher"] == "tiny_gelu.t1" and recipe["conversion"] is None
    assert manifest["training"]["time_plan"]["epochs"] >= 1
    # No conversion: the student started from its own initialisation, not the teacher's weights.
    assert manifest["provenance"].get("model") != "tiny_gelu.t1"


def test_the_planner_times_the_teachers_forward_pass_in_each_step():
    from tn_keras.training import time_budget
    keras.utils.set_random_seed(0)
    calls = []

    def make(name):
        inputs = keras.Input((4,))
        return keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(inputs),
                           name=name)

    teacher = make("teacher")

    def counting_teacher(x, training=False):
        calls.append(len(x))
        return teacher(x, training=training)

    def compile_model(model):
        model.compile(optimizer="sgd", loss=keras.losses.CategoricalCrossentropy())

    x, y = np.ones((8, 4), "float32"), np.zeros(8, "int64")
    seconds = time_budget.measure_step_seconds(lambda: make("student"), compile_model, x, y,
                                               batch_size=8, teacher=counting_teacher)
    assert seconds > 0
    assert calls == [8] * (time_budget.UNTIMED_STEPS + time_budget.TIMED_STEPS)


@pytest.mark.parametrize("change, message", [
    (dict(teacher=None), "conversion 'gelu_quadratic' needs a teacher"),
    (dict(conversion="relu"), "Unknown conversion 'relu'"),
])
def test_a_conversion_recipe_without_its_parts_is_refused_before_any_work(change, message):
    from tn_keras import zoo
    from tn_keras.training import train
    from tn_keras.zoo.cifar_taylornet_fast import CONVERSION_RECIPE

    recipe = dataclasses.replace(CONVERSION_RECIPE, **change)
    with zoo.registered("tiny_refused", lambda **k: None, dataset="cifar10", recipe=recipe,
                        parameters=None):
        with pytest.raises(ValueError, match=message):
            train("tiny_refused", out="/nonexistent/never-written")


def test_conversion_and_init_from_together_are_refused():
    from tn_keras.training import train

    with pytest.raises(ValueError, match="both choose the starting weights"):
        train("cifar_taylornet_converted", init_from="cifar_convnet_fast_gelu.e10",
              out="/nonexistent/never-written")


@pytest.mark.backend_neutral
def test_the_registered_student_takes_the_teachers_weights():
    from tn_keras import zoo

    student = zoo.build("cifar_taylornet_converted", width=0.125)
    teacher = zoo.build("cifar_convnet_fast_gelu", width=0.125)
    errors = conversion.convert(teacher, student, _images(4))
    assert len(errors) == 7
    assert np.isfinite(student.predict(_images(4), verbose=0)).all()
