"""The layers as Keras citizens: configs, `.keras` files, XLA, distribution, mixed precision,
training and argument errors.

The checks that need a fresh Python process (loading a `.keras` file with nothing but
``import tn_keras.layers``, and MirroredStrategy on two logical CPUs, which must be configured before
TensorFlow initialises) share ONE subprocess, run once per module by the ``fresh_process``
fixture: starting TensorFlow costs several seconds.
"""
import json
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

from tn_keras.layers import DilatedPolyCG
from tn_keras.layers import PolyCG
from tn_keras.layers import TaylorDense


def randomize_weights(layer, rng, scale=0.3):
    """Random values for every weight (the default bias and exact quadratic kernel are 0)."""
    for variable in layer.weights:
        variable.assign(rng.normal(0.0, scale, size=tuple(variable.shape)))


# One instance of each layer form, with the input it takes (batch first).
LAYER_FORMS = {
    "polycg": (lambda: PolyCG(4, order=3, rank=2), (2, 6, 6, 3)),
    "polycg_same": (lambda: PolyCG(4, kernel_size=3, strides=(1, 2), padding="same"),
                    (2, 7, 6, 3)),
    "dilated": (lambda: DilatedPolyCG(4, dilation_rate=2, rank=2), (2, 6, 6, 3)),
    "dense_exact": (lambda: TaylorDense(5), (3, 6)),
    "dense_cp": (lambda: TaylorDense(5, order=3, rank=2), (3, 2, 6)),
}


def built_form(name, seed=0, **overrides):
    """The named layer, built and with random weights, and a random input for it."""
    factory, shape = LAYER_FORMS[name]
    layer = factory()
    if overrides:
        layer = type(layer).from_config({**layer.get_config(), **overrides})
    rng = np.random.default_rng(seed)
    x = rng.normal(size=shape).astype("float32")
    layer.build(shape)
    randomize_weights(layer, rng)
    return layer, x


# ----------------------------------------------------------------------------------------------
# get_config / from_config
# ----------------------------------------------------------------------------------------------
CUSTOM_ARGUMENTS = dict(
    kernel_initializer=keras.initializers.RandomNormal(stddev=0.02, seed=3),
    factor_initializer=keras.initializers.Orthogonal(gain=0.5, seed=4),
    bias_initializer=keras.initializers.Constant(0.25),
    kernel_regularizer=keras.regularizers.L1L2(l1=1e-3, l2=2e-3),
    factor_regularizer=keras.regularizers.L2(5e-4),
    bias_regularizer=keras.regularizers.L1(1e-5),
    activity_regularizer=keras.regularizers.L2(1e-6),
    kernel_constraint=keras.constraints.MaxNorm(2.0, axis=0),
    factor_constraint=keras.constraints.UnitNorm(axis=0),
    bias_constraint=keras.constraints.NonNeg(),
)

CONFIG_CASES = {
    "polycg": lambda: PolyCG(6, kernel_size=(3, 2), strides=(1, 2), padding="same", order=3,
                             rank=2, data_format="channels_first", use_bias=False,
                             name="cg", **CUSTOM_ARGUMENTS),
    "dilated": lambda: DilatedPolyCG(5, kernel_size=3, dilation_rate=(4, 2), order=2, rank=3,
                                     **CUSTOM_ARGUMENTS),
    "dense_exact": lambda: TaylorDense(
        7, quadratic_initializer=keras.initializers.RandomUniform(-0.1, 0.1, seed=5),
        quadratic_regularizer=keras.regularizers.L2(3e-3),
        quadratic_constraint=keras.constraints.MinMaxNorm(0.0, 1.0), **CUSTOM_ARGUMENTS),
    "dense_cp": lambda: TaylorDense(4, order=3, rank=2, use_bias=False, **CUSTOM_ARGUMENTS),
}


@pytest.mark.parametrize("name", sorted(CONFIG_CASES))
def test_config_round_trip(name):
    layer = CONFIG_CASES[name]()
    config = layer.get_config()
    json.dumps(config)  # serialisable as is
    clone = type(layer).from_config(config)
    assert clone.get_config() == config
    # The custom objects survive as objects of the right kind with the right values.
    assert isinstance(clone.kernel_regularizer, keras.regularizers.L1L2)
    assert clone.kernel_regularizer.l2 == pytest.approx(2e-3)
    assert isinstance(clone.kernel_initializer, keras.initializers.RandomNormal)
    assert clone.kernel_initializer.stddev == pytest.approx(0.02)
    assert isinstance(clone.bias_constraint, keras.constraints.NonNeg)
    assert isinstance(clone.factor_constraint, keras.constraints.UnitNorm)
    assert clone.activity_regularizer.get_config() == {"l2": pytest.approx(1e-6)}
    if name == "dense_exact":
        assert isinstance(clone.quadratic_constraint, keras.constraints.MinMaxNorm)
    if name == "dilated":
        assert "strides" not in config and clone.strides == (1, 1)
        assert clone.dilation_rate == (4, 2)


@pytest.mark.parametrize("name", sorted(LAYER_FORMS))
def test_from_config_with_weights_reproduces_output(name):
    layer, x = built_form(name)
    clone = type(layer).from_config(layer.get_config())
    clone.build(x.shape)
    clone.set_weights(layer.get_weights())
    np.testing.assert_array_equal(np.asarray(clone(x)), np.asarray(layer(x)))


def test_custom_constraint_and_regularizer_are_used():
    """Not only stored: the regularizer adds a loss, the constraint clips in training."""
    layer = PolyCG(2, bias_constraint=keras.constraints.NonNeg(),
                   factor_regularizer=keras.regularizers.L2(0.1))
    model = keras.Sequential([keras.Input((4, 4, 1)), layer, keras.layers.Flatten()])
    model.compile("sgd", "mse")
    layer.bias.assign(-np.ones(2, "float32"))
    model.fit(np.ones((4, 4, 4, 1), "float32"), np.zeros((4, 8), "float32"), verbose=0)
    assert np.all(np.asarray(layer.bias) >= 0.0)
    expected = 0.1 * np.sum(np.asarray(layer.factor_kernel) ** 2)
    model(np.ones((1, 4, 4, 1), "float32"))
    assert float(sum(model.losses)) == pytest.approx(expected, rel=1e-4)


# ----------------------------------------------------------------------------------------------
# Fresh process: .keras without custom_objects, and MirroredStrategy on two logical CPUs
# ----------------------------------------------------------------------------------------------
FRESH_PROCESS_SCRIPT = textwrap.dedent('''
    """Run by test_layers_keras.py in a new interpreter; writes results.json in argv[1]."""
    import json, os, sys
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    # Two logical CPUs, before anything initialises TensorFlow's devices.
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()])

    import keras
    import numpy as np
    # Importing the layers module registers the classes (tn_keras itself loads its
    # sub-packages lazily): no custom_objects below.
    import tn_keras.layers

    folder = sys.argv[1]
    results = {}

    # 1. Load the .keras file written by the parent process.
    model = keras.saving.load_model(os.path.join(folder, "model.keras"), safe_mode=True)
    data = np.load(os.path.join(folder, "data.npz"))
    np.save(os.path.join(folder, "loaded_outputs.npy"), np.asarray(model.predict(data["x"], verbose=0)))
    np.savez(os.path.join(folder, "loaded_weights.npz"), *model.get_weights())
    results["layer_classes"] = [
        type(layer).__module__ + "." + type(layer).__name__ for layer in model.layers]

    # 2. MirroredStrategy over the two logical CPUs: build, fit one step, predict in scope.
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    results["replicas"] = strategy.num_replicas_in_sync
    with strategy.scope():
        net = keras.Sequential([
            keras.Input((8, 8, 3)),
            tn_keras.layers.PolyCG(4, order=2, rank=2),
            tn_keras.layers.DilatedPolyCG(4, dilation_rate=2, padding="same"),
            keras.layers.Flatten(),
            tn_keras.layers.TaylorDense(6),
            tn_keras.layers.TaylorDense(3, order=3, rank=1),
        ])
        net.compile(keras.optimizers.SGD(0.01),
                    keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        before = [np.array(w) for w in net.get_weights()]
        rng = np.random.default_rng(0)
        x = rng.normal(size=(16, 8, 8, 3)).astype("float32")
        y = rng.integers(0, 3, 16)
        history = net.fit(x, y, batch_size=16, epochs=1, steps_per_epoch=1, verbose=0)
        predictions = net.predict(x, batch_size=8, verbose=0)
    results["variable_is_mirrored"] = type(net.layers[0].kernel.value).__name__
    results["loss"] = float(history.history["loss"][0])
    results["weights_changed"] = [
        bool(np.any(a != np.asarray(b))) for a, b in zip(before, net.get_weights())]
    results["predictions_shape"] = list(predictions.shape)
    results["predictions_finite"] = bool(np.all(np.isfinite(predictions)))
    with open(os.path.join(folder, "results.json"), "w") as f:
        json.dump(results, f)
''')


def model_with_every_layer(seed=0):
    """A functional model with PolyCG, DilatedPolyCG and both TaylorDense forms, random weights
    and a custom regularizer / constraint / initializer to serialise."""
    inputs = keras.Input((8, 8, 3))
    x = PolyCG(4, order=3, rank=2, kernel_regularizer=keras.regularizers.L2(1e-3),
               factor_constraint=keras.constraints.MaxNorm(3.0))(inputs)
    x = DilatedPolyCG(4, dilation_rate=2, padding="same", data_format="channels_last")(x)
    x = keras.layers.Flatten()(x)
    x = TaylorDense(5, quadratic_initializer=keras.initializers.RandomNormal(seed=1))(x)
    outputs = TaylorDense(3, order=3, rank=2)(x)
    model = keras.Model(inputs, outputs)
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        randomize_weights(layer, rng, scale=0.2)
    return model


@pytest.fixture(scope="module")
def fresh_process(tmp_path_factory):
    """Save a model, then run FRESH_PROCESS_SCRIPT once; return (folder, results, model, x)."""
    folder = tmp_path_factory.mktemp("fresh_process")
    model = model_with_every_layer()
    x = np.random.default_rng(1).normal(size=(5, 8, 8, 3)).astype("float32")
    model.save(folder / "model.keras")
    np.savez(folder / "data.npz", x=x)
    script = folder / "fresh_process.py"
    script.write_text(FRESH_PROCESS_SCRIPT)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    completed = subprocess.run([sys.executable, str(script), str(folder)], capture_output=True,
                               text=True, timeout=300, env=env)
    assert completed.returncode == 0, completed.stderr[-4000:]
    results = json.loads((folder / "results.json").read_text())
    return folder, results, model, x


def test_keras_file_loads_in_fresh_process_without_custom_objects(fresh_process):
    folder, results, model, x = fresh_process
    assert results["layer_classes"][1:] == [
        "tn_keras.layers.poly_cg.PolyCG", "tn_keras.layers.poly_cg.DilatedPolyCG",
        "keras.src.layers.reshaping.flatten.Flatten", "tn_keras.layers.taylor_dense.TaylorDense",
        "tn_keras.layers.taylor_dense.TaylorDense"]
    loaded_weights = np.load(folder / "loaded_weights.npz")
    saved_weights = model.get_weights()
    assert len(loaded_weights.files) == len(saved_weights)
    for index, weight in enumerate(saved_weights):
        np.testing.assert_array_equal(loaded_weights[f"arr_{index}"], weight)
    expected = np.asarray(model.predict(x, verbose=0))
    loaded = np.load(folder / "loaded_outputs.npy")
    # Same weights and the same ops: equal up to the float32 summation order of another process.
    np.testing.assert_allclose(loaded, expected, rtol=0, atol=1e-6 * np.max(np.abs(expected)))


def test_keras_file_loads_in_this_process_with_safe_mode(fresh_process):
    folder, _, model, x = fresh_process
    loaded = keras.saving.load_model(folder / "model.keras", safe_mode=True)
    assert [type(layer) for layer in loaded.layers] == [type(layer) for layer in model.layers]
    for original, restored in zip(model.layers, loaded.layers):
        assert restored.get_config() == original.get_config()
    np.testing.assert_array_equal(np.asarray(loaded(x)), np.asarray(model(x)))


def test_mirrored_strategy_on_two_logical_cpus(fresh_process):
    _, results, _, _ = fresh_process
    assert results["replicas"] == 2
    assert "Mirrored" in results["variable_is_mirrored"]
    assert np.isfinite(results["loss"])
    assert all(results["weights_changed"]), results["weights_changed"]
    assert results["predictions_shape"] == [16, 3]
    assert results["predictions_finite"]


# ----------------------------------------------------------------------------------------------
# tf.function with XLA, gradients
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(LAYER_FORMS))
def test_xla_matches_eager_including_gradients(name):
    layer, x = built_form(name)
    x = tf.constant(x)

    def forward_and_gradients(inputs):
        with tf.GradientTape() as tape:
            tape.watch(inputs)
            outputs = layer(inputs)
            loss = tf.reduce_sum(tf.square(outputs))
        return outputs, tape.gradient(loss, [inputs] + layer.trainable_variables)

    eager_out, eager_grads = forward_and_gradients(x)
    xla_out, xla_grads = tf.function(forward_and_gradients, jit_compile=True)(x)
    scale = float(tf.reduce_max(tf.abs(eager_out)))
    np.testing.assert_allclose(xla_out, eager_out, rtol=0, atol=1e-5 * scale)
    for eager_grad, xla_grad in zip(eager_grads, xla_grads):
        grad_scale = float(tf.reduce_max(tf.abs(eager_grad)))
        np.testing.assert_allclose(xla_grad, eager_grad, rtol=0, atol=1e-4 * grad_scale)


@pytest.mark.parametrize("name", sorted(LAYER_FORMS))
def test_gradients_are_finite_and_reach_every_weight(name):
    layer, x = built_form(name)
    x = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        loss = tf.reduce_mean(tf.square(layer(x) - 1.0))
    gradients = tape.gradient(loss, [x] + layer.trainable_variables)
    assert len(gradients) == 1 + len(layer.weights)
    for gradient in gradients:
        assert gradient is not None
        assert np.all(np.isfinite(gradient))
        assert np.any(np.asarray(gradient) != 0.0)


# ----------------------------------------------------------------------------------------------
# Training
# ----------------------------------------------------------------------------------------------
def stripes(num_images, seed):
    """8x8 images: horizontal (class 0) or vertical (class 1) stripes, random sign, noise.

    The sign flip makes the classes indistinguishable to any linear function of the pixels (the
    mean image of each class is 0): only products can separate them.
    """
    rng = np.random.default_rng(seed)
    horizontal = np.tile(np.where(np.arange(8) % 2, 1.0, -1.0)[:, None], (1, 8))
    patterns = np.stack([horizontal, horizontal.T])
    labels = rng.integers(0, 2, num_images)
    amplitude = rng.choice([-1.0, 1.0], num_images) * rng.uniform(0.5, 1.0, num_images)
    images = amplitude[:, None, None] * patterns[labels]
    images = images + rng.normal(0.0, 0.5, size=images.shape)
    return images[..., None].astype("float32"), labels


def taylor_net(order):
    """A coarse-graining tree 8x8 -> 4x4 -> 2x2 -> 1x1, then a linear read-out; no activation."""
    return keras.Sequential([
        keras.Input((8, 8, 1)),
        PolyCG(8, order=order), PolyCG(8, order=order), PolyCG(8, order=order),
        keras.layers.Flatten(),
        TaylorDense(2, order=1),
    ])


def train_and_evaluate(order):
    keras.utils.set_random_seed(0)
    x_train, y_train = stripes(512, seed=0)
    x_test, y_test = stripes(512, seed=1)
    model = taylor_net(order)
    model.compile(keras.optimizers.Adam(1e-2),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    model.fit(x_train, y_train, epochs=4, batch_size=32, verbose=0)
    return model.evaluate(x_test, y_test, verbose=0)[1]


@pytest.mark.slow
def test_taylor_net_learns_a_task_that_needs_products():
    """Order 2 learns the stripes; the same tree with order 1 (a linear map) cannot."""
    assert train_and_evaluate(order=2) > 0.9
    assert train_and_evaluate(order=1) < 0.7


# ----------------------------------------------------------------------------------------------
# Mixed precision
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
@pytest.mark.parametrize("name", sorted(LAYER_FORMS))
def test_mixed_precision(policy, name):
    """Output in the compute dtype, variables in float32, values close to the float32 layer."""
    reference, x = built_form(name)
    expected = np.asarray(reference(x))
    keras.mixed_precision.set_global_policy(policy)
    try:
        layer = type(reference).from_config(
            {**reference.get_config(), "dtype": keras.DTypePolicy(policy)})
        layer.build(x.shape)
        layer.set_weights(reference.get_weights())
        outputs = layer(x)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    compute_dtype = policy.split("_")[1]
    assert layer.compute_dtype == compute_dtype
    assert keras.backend.standardize_dtype(outputs.dtype) == compute_dtype
    assert {v.dtype for v in layer.weights} == {"float32"}
    tolerance = 2e-2 if compute_dtype == "float16" else 1e-1
    np.testing.assert_allclose(np.asarray(outputs, np.float32), expected, rtol=0,
                               atol=tolerance * np.max(np.abs(expected)))


# ----------------------------------------------------------------------------------------------
# Errors: a ValueError that names the argument and the value received
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("make,match", [
    (lambda: PolyCG(0), r"`filters`.*filters=0"),
    (lambda: PolyCG(-3), r"`filters`.*filters=-3"),
    (lambda: PolyCG(4, order=0), r"`order`.*order=0"),
    (lambda: PolyCG(4, rank=0), r"`rank`.*rank=0"),
    (lambda: PolyCG(4, order=2.5), r"`order`.*order=2\.5"),
    (lambda: PolyCG(4, strides=2, dilation_rate=2),
     r"strides=\(2, 2\) and dilation_rate=\(2, 2\)"),
    (lambda: PolyCG(4, strides=(1, 3), dilation_rate=(2, 1)),
     r"strides=\(1, 3\) and dilation_rate=\(2, 1\)"),
    (lambda: PolyCG(4, kernel_size=0), r"`kernel_size`.*kernel_size=\(0, 0\)"),
    (lambda: PolyCG(4, kernel_size=(2, 2, 2)), r"`kernel_size`.*kernel_size=\(2, 2, 2\)"),
    (lambda: PolyCG(4, padding="full"), r"`padding`.*padding='full'"),
    (lambda: PolyCG(4, data_format="NHWC"), r"`data_format`.*data_format='NHWC'"),
    (lambda: DilatedPolyCG(4, strides=2), r"strides=2"),
    (lambda: DilatedPolyCG(4, order=0), r"`order`.*order=0"),
    (lambda: TaylorDense(0), r"`units`.*units=0"),
    (lambda: TaylorDense(3, order=0), r"`order`.*order=0"),
    (lambda: TaylorDense(3, rank=0), r"`rank`.*rank=0"),
    (lambda: TaylorDense(3, order=3), r"rank=None.*order=3"),
], ids=lambda value: "" if callable(value) else value)
def test_bad_arguments_raise_value_error(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def _built_polycg():
    layer = PolyCG(4)
    layer.build((None, 6, 6, 3))
    return layer


def _built_dense():
    layer = TaylorDense(2)
    layer.build((None, 4))
    return layer


@pytest.mark.parametrize("call,match", [
    (lambda: PolyCG(4)(np.zeros((6, 6, 3), "float32")), r"expected ndim=4, found ndim=3"),
    (lambda: PolyCG(4)(np.zeros((1, 2, 6, 6, 3), "float32")), r"expected ndim=4, found ndim=5"),
    (lambda: PolyCG(4, kernel_size=5)(np.zeros((1, 3, 8, 1), "float32")),
     r"kernel_size=\(5, 5\).*does not fit.*\(1, 3, 8, 1\).*padding='valid'"),
    (lambda: DilatedPolyCG(4, dilation_rate=4)(np.zeros((1, 4, 4, 1), "float32")),
     r"dilation_rate=\(4, 4\).*does not fit"),
    (lambda: _built_polycg()(np.zeros((1, 6, 6, 2), "float32")),
     r"expected axis -1 of input shape to have value 3.*\(1, 6, 6, 2\)"),
    (lambda: TaylorDense(2)(np.zeros((4,), "float32")), r"expected min_ndim=2, found ndim=1"),
    (lambda: _built_dense()(np.zeros((3, 5), "float32")),
     r"expected axis -1 of input shape to have value 4.*\(3, 5\)"),
    (lambda: PolyCG(2).taylor_coefficients(), r"'poly_cg.*' is not built"),
    (lambda: TaylorDense(2, name="td").taylor_coefficients(), r"'td' is not built"),
], ids=["polycg-3d", "polycg-5d", "kernel-too-large", "dilated-too-large", "polycg-channels",
        "dense-1d", "dense-features", "polycg-unbuilt", "dense-unbuilt"])
def test_bad_inputs_raise_value_error(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_oversized_coefficient_tensor_is_refused():
    """taylor_coefficients() refuses to allocate F * P^k numbers beyond max_elements."""
    layer = TaylorDense(2, order=3, rank=1)
    layer.build((None, 400))  # order 3: 2 * 400^3 = 128 M numbers
    with pytest.raises(ValueError, match=r"max_order"):
        layer.taylor_coefficients()
    assert sorted(layer.taylor_coefficients(max_order=2)) == ["bias", "linear", "order_2"]
