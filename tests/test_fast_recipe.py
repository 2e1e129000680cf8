"""The fast recipe (#23): patch whitening, the optimiser and its schedule, Lookahead, label
smoothing, flip + translate in both pipelines, test-time augmentation, the new family, and a
resumed run equal to an uninterrupted one. Each against an independent NumPy computation."""
import json
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

from tn_keras import datasets
from tn_keras import interpret
from tn_keras import zoo
from tn_keras.datasets import augment
from tn_keras.layers import PatchWhitening
from tn_keras.layers import patch_whitening_kernel
from tn_keras.training import averaging
from tn_keras.training.evaluation import tta_predict
from tn_keras.training import losses
from tn_keras.training import optimizers

sys.path.insert(0, os.path.dirname(__file__))
from _tiny_data import write_tiny_cifar  # noqa: E402

ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", TN_KERAS_OFFLINE="1")


def _images(n=6, size=9, channels=3, seed=0):
    return np.random.default_rng(seed).normal(size=(n, size, size, channels))


# --- patch whitening --------------------------------------------------------------------------

def test_whitening_kernel_matches_an_independent_svd():
    x = _images()
    kernel = patch_whitening_kernel(x, 2, epsilon=1e-3).astype(np.float64)
    # Independent: every 2x2 patch by explicit loops, then the SVD of the patch matrix (its
    # right singular vectors are the covariance's eigenvectors, s^2 / n its eigenvalues).
    patches = np.array([x[i, r:r + 2, c:c + 2, :].reshape(-1) for i in range(len(x))
                        for r in range(x.shape[1] - 1) for c in range(x.shape[2] - 1)])
    _, s, vt = np.linalg.svd(patches, full_matrices=False)
    eigenvalues = s ** 2 / len(patches)
    expected = vt.T / np.sqrt(eigenvalues + 1e-3)
    filters = kernel.reshape(12, 24)
    assert kernel.shape == (2, 2, 3, 24)
    # Eigenvectors are defined up to sign: compare column by column.
    for i in range(12):
        sign = np.sign(filters[:, i] @ expected[:, i])
        np.testing.assert_allclose(filters[:, i], sign * expected[:, i], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(filters[:, 12:], -filters[:, :12], rtol=0, atol=0)
    # The whitened patches have second moments lambda / (lambda + epsilon), uncorrelated.
    moments = (patches @ filters[:, :12]).T @ (patches @ filters[:, :12]) / len(patches)
    np.testing.assert_allclose(moments, np.diag(eigenvalues / (eigenvalues + 1e-3)),
                               atol=1e-4)


def test_whitening_layer_is_the_convolution_of_its_kernel():
    x = _images(n=3).astype("float32")
    layer = PatchWhitening(2, name="w")
    layer.adapt(x)
    layer.bias.assign(np.arange(24, dtype="float32") / 10)
    out = keras.ops.convert_to_numpy(layer(x))
    kernel = keras.ops.convert_to_numpy(layer.kernel).reshape(12, 24)
    expected = np.array([[[x[i, r:r + 2, c:c + 2].reshape(-1) @ kernel
                           for c in range(8)] for r in range(8)] for i in range(3)])
    np.testing.assert_allclose(out, expected + np.arange(24) / 10, rtol=1e-5, atol=1e-5)
    assert not layer.kernel.trainable and layer.bias.trainable
    coefficients = layer.taylor_coefficients()
    np.testing.assert_allclose(coefficients["linear"], kernel.T, rtol=1e-6)


@pytest.mark.parametrize("images, match", [
    (np.zeros((2, 1, 4, 3)), r"images must be a non-empty \(N, H, W, C\) array with H >= 2"),
    (np.full((2, 4, 4, 3), np.nan), "NaN or infinite"),
])
def test_whitening_refuses_bad_images(images, match):
    with pytest.raises(ValueError, match=match):
        patch_whitening_kernel(images, 2)


def test_whitening_layer_refuses_other_channels():
    layer = PatchWhitening(2, name="w")
    layer.build((None, 8, 8, 3))
    with pytest.raises(ValueError, match=r"'w'.adapt: images must be \(N, H, W, 3\)"):
        layer.adapt(np.zeros((2, 8, 8, 1)))


# --- optimiser, schedule, loss, averaging ------------------------------------------------------

def test_triangular_schedule_is_the_documented_piecewise_line():
    schedule = optimizers.TriangularSchedule(2.0, 100, warmup_fraction=0.23, start=0.2,
                                             end=0.07)
    for step, expected in [(0, 0.4), (11.5, 0.4 + 1.6 * 11.5 / 23), (23, 2.0),
                           (23 + 77 / 2, 2.0 * (1 - 0.93 / 2)), (100, 0.14), (150, 0.14)]:
        np.testing.assert_allclose(float(schedule(step)), expected, rtol=1e-6)


def test_scaled_sgd_is_pytorch_nesterov_with_coupled_decay_and_groups():
    """Two steps of ScaledSGD against PyTorch's SGD update written out in NumPy: ``d = m g +
    l2 w``, ``b = mu b + d``, ``w -= lr (d + mu b)`` (Keras's buffer is ``-lr b``)."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((3,))
    dense = keras.layers.Dense(2, name="dense")
    norm = keras.layers.BatchNormalization(name="norm")
    model = keras.Model(inputs, norm(dense(inputs)))
    lr, mu, l2 = 0.1, 0.85, 0.01
    opt = optimizers.ScaledSGD(learning_rate=lr, momentum=mu, nesterov=True, l2=l2,
                               multipliers={"*/beta": 64.0})
    variables = model.trainable_variables
    opt.build(variables)
    weights = [np.array(v.numpy(), np.float64) for v in variables]
    buffers = [np.zeros_like(w) for w in weights]
    scale = [64.0 if v.path.endswith("/beta") else 1.0 for v in variables]
    assert scale.count(64.0) == 1
    rng = np.random.default_rng(1)
    for _ in range(2):
        grads = [rng.normal(size=w.shape) for w in weights]
        opt.apply_gradients(zip([keras.ops.convert_to_tensor(g, "float32") for g in grads],
                                variables))
        for i, (w, g) in enumerate(zip(weights, grads)):
            d = scale[i] * g + l2 * w
            buffers[i] = mu * buffers[i] + d
            weights[i] = w - lr * (d + mu * buffers[i])
    for v, w in zip(variables, weights):
        np.testing.assert_allclose(v.numpy(), w, rtol=1e-5, atol=1e-6)


def test_smoothed_crossentropy_matches_numpy():
    probs = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]], np.float32)
    labels = np.array([0, 1])
    loss = losses.SparseSmoothedCrossentropy(0.2)
    target = np.eye(3)[labels] * 0.8 + 0.2 / 3
    expected = np.mean(-(target * np.log(probs)).sum(-1))
    np.testing.assert_allclose(float(loss(labels, probs)), expected, rtol=1e-5)
    with pytest.raises(ValueError, match="label_smoothing must be in"):
        losses.SparseSmoothedCrossentropy(1.0)


def test_lookahead_follows_its_recurrence():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(keras.optimizers.SGD(0.1), "mse")
    x, y = np.random.default_rng(0).normal(size=(8, 2)), np.ones((8, 1))
    callback = averaging.LookaheadAveraging(total_steps=8, every=2, max_decay=0.5)
    recorded = []

    class Record(keras.callbacks.Callback):
        # Runs before the averaging callback (listed first): the weights the step produced.
        def on_train_batch_end(self, batch, logs=None):
            recorded.append([w.copy() for w in model.get_weights()])

    start = [w.copy() for w in model.get_weights()]
    model.fit(x, y, batch_size=2, epochs=2, shuffle=False, verbose=0,
              callbacks=[Record(), callback])
    average = [w.astype(np.float64) for w in start]
    current = None
    for step, weights in enumerate(recorded, start=1):
        current = weights
        if step % 2 == 0:
            decay = 0.5 * (step / 8) ** 3
            average = [decay * a + (1 - decay) * w for a, w in zip(average, weights)]
            current = average
    for got, want in zip(model.get_weights(), current):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


# --- augmentation ----------------------------------------------------------------------------

def test_numpy_flip_translate_alternates_flips_and_reflects():
    x = np.random.default_rng(0).integers(0, 255, (64, 8, 8, 3)).astype(np.uint8)
    y = np.zeros(64, np.uint8)
    options = datasets.PipelineConfig(augment="flip_translate", seed=3, pipeline="numpy",
                                      dataset_name="cifar10")
    ds = datasets.make_dataset(x, y, 64, training=True, options=options)
    order = [ds.order(e) for e in (0, 1)]
    batches = [ds.batch(e, 0)[0] for e in (0, 1)]
    base = augment.base_flips(3, 64)
    for e, (rows, batch) in enumerate(zip(order, batches)):
        for k, row in enumerate(rows):
            flipped = base[row] ^ bool(e % 2)
            image = x[row][:, ::-1] if flipped else x[row]
            padded = np.pad(image.astype(np.float32), ((2, 2), (2, 2), (0, 0)), mode="reflect")
            # The shift is random: the batch's image must be one of the 25 reflected crops.
            crops = [padded[dy:dy + 8, dx:dx + 8] for dy in range(5) for dx in range(5)]
            assert any(np.array_equal(batch[k], c) for c in crops), (e, k)


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="tf.data pipeline")
def test_tf_flip_translate_batches_are_a_function_of_seed_and_epoch():
    x = np.random.default_rng(0).integers(0, 255, (50, 8, 8, 3)).astype(np.uint8)
    y = np.arange(50) % 10
    options = datasets.PipelineConfig(augment="flip_translate", seed=5, pipeline="tf.data",
                                      dataset_name="cifar10")

    def epoch_batches(ds, epoch):
        ds.epoch_clock.on_epoch_begin(epoch)
        return [(np.asarray(a), np.asarray(b)) for a, b in ds]

    first = datasets.make_dataset(x, y, 16, training=True, options=options)
    second = datasets.make_dataset(x, y, 16, training=True, options=options)
    one = [epoch_batches(first, e) for e in (0, 1, 2)]
    # A new pipeline started at epoch 2 (as a resumed run is) repeats epoch 2 exactly.
    again = epoch_batches(second, 2)
    for (a, b), (c, d) in zip(one[2], again):
        np.testing.assert_array_equal(a, c)
        np.testing.assert_array_equal(b, d)
    labels = [np.concatenate([b for _, b in batches]) for batches in one]
    assert sorted(labels[0]) == sorted(y) and not np.array_equal(labels[0], labels[1])
    # Epochs 0 and 1 flip every image the other way: its mean column profile mirrors.
    base = augment.base_flips(5, 50)
    assert 0 < base.sum() < 50


# --- test-time augmentation ------------------------------------------------------------------

def test_tta_is_the_weighted_mean_of_flipped_and_shifted_predictions():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((6, 6, 1)), keras.layers.Flatten(),
                              keras.layers.Dense(3, activation="softmax")])
    x = np.random.default_rng(2).uniform(0, 255, (5, 6, 6, 1)).astype(np.float32)

    def predict(images):
        return model.predict(images, verbose=0).astype(np.float64)

    padded = np.stack([np.pad(im, ((1, 1), (1, 1), (0, 0)), mode="reflect") for im in x])
    up_left, down_right = padded[:, 0:6, 0:6], padded[:, 2:8, 2:8]
    expected = (0.5 * (predict(x) + predict(x[:, :, ::-1])) / 2
                + 0.25 * (predict(up_left) + predict(up_left[:, :, ::-1])) / 2
                + 0.25 * (predict(down_right) + predict(down_right[:, :, ::-1])) / 2)
    np.testing.assert_allclose(tta_predict(model, x), expected, rtol=1e-6)


# --- the new family --------------------------------------------------------------------------

def test_fast_family_is_a_polynomial_whose_orders_sum_to_the_logits():
    keras.utils.set_random_seed(0)
    model = zoo.build("cifar_taylornet_fast_small", width=0.125)
    # Move the weights away from their start, with the product branches' gates at 0.1: at
    # full gates the untrained statistics (raw 0..255 pixels, no whitening adapted) drive the
    # degree-64 logits to ~1e4 and their orders to ~1e33, past what a float64 Vandermonde
    # solve over 65 nodes resolves.
    for layer in model.layers:
        for weight in layer.weights:
            if not weight.trainable:
                continue
            value = np.asarray(weight.numpy())
            if "gamma" in weight.path:
                weight.assign(np.full_like(value, 0.1))
            else:
                weight.assign(value + 0.1 * np.random.default_rng(1).normal(size=value.shape))
    assert interpret.degree(model) == 64
    x = np.random.default_rng(0).uniform(0, 255, (2, 32, 32, 3)).astype(np.float32)
    orders = interpret.order_decomposition(model, x)
    assert orders.shape == (2, 65, 10)
    logits = keras.Model(model.inputs, model.get_layer("logits").output).predict(x, verbose=0)
    np.testing.assert_allclose(orders.sum(axis=1), logits, rtol=1e-3, atol=1e-4)


def test_fast_family_round_trips_in_a_fresh_process(tmp_path):
    keras.utils.set_random_seed(0)
    model = zoo.build("cifar_taylornet_fast_small", width=0.25)
    model.get_layer("whiten").adapt(np.random.default_rng(0).normal(size=(4, 32, 32, 3)))
    x = np.random.default_rng(1).uniform(0, 255, (3, 32, 32, 3)).astype(np.float32)
    path = str(tmp_path / "fast.keras")
    model.save(path)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", model.predict(x, verbose=0))
    script = textwrap.dedent(f"""
        import keras, numpy as np
        import tn_keras  # registers the layers with Keras
        model = keras.saving.load_model({path!r})
        x = np.load({str(tmp_path / 'x.npy')!r})
        np.testing.assert_array_equal(model.predict(x, verbose=0),
                                      np.load({str(tmp_path / 'y.npy')!r}))
        print("same")
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            env=ENV, timeout=300)
    assert result.returncode == 0 and "same" in result.stdout, result.stderr[-2000:]


# --- a resumed run is the uninterrupted run ----------------------------------------------------

_TINY = """
import keras
from tn_keras import zoo
from tn_keras.zoo.cifar_taylornet_fast import FAST_RECIPE, fast_network
import dataclasses

@zoo.register("test_fast_tiny", dataset="cifar10", parameters=None,
              recipe=dataclasses.replace(FAST_RECIPE, epochs=3, batch_size=32,
                                         whitening_images=64, test_time_augmentation=False))
def test_fast_tiny(input_shape=(32, 32, 3), num_classes=10, name="test_fast_tiny",
                   classifier_activation="softmax"):
    return fast_network((4, 8, 8), "gated", input_shape, num_classes, classifier_activation,
                        name)
"""


def _train_script(out, data, interrupt_after=None, resume=False):
    stop = "" if interrupt_after is None else f"""
class Interrupt(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        if epoch == {interrupt_after}:
            raise SystemExit(3)
"""
    callbacks = "[]" if interrupt_after is None else "[Interrupt()]"
    return _TINY + stop + f"""
from tn_keras.training import train
model, _ = train("test_fast_tiny", out={out!r}, data_dir={data!r}, seed=4, verbose=0,
                 resume={resume}, callbacks={callbacks})
import numpy as np
np.savez({out!r} + "/weights.npz", *model.get_weights())
"""


@pytest.mark.backend_neutral  # the NumPy pipeline's epoch clock, as well as tf.data's
def test_a_run_resumed_in_a_second_process_ends_with_the_same_weights(tmp_path):
    write_tiny_cifar(tmp_path)
    data = str(tmp_path)
    whole, split = str(tmp_path / "whole"), str(tmp_path / "split")

    def run(script, code=0):
        result = subprocess.run([sys.executable, "-c", script], capture_output=True,
                                text=True, env=ENV, timeout=600)
        assert result.returncode == code, result.stderr[-3000:]

    run(_train_script(whole, data))
    run(_train_script(split, data, interrupt_after=0), code=3)
    run(_train_script(split, data, resume=True))
    one, two = np.load(whole + "/weights.npz"), np.load(split + "/weights.npz")
    assert len(one.files) == len(two.files) > 0
    for key in one.files:
        np.testing.assert_array_equal(one[key], two[key], err_msg=key)
    with open(os.path.join(whole, "manifest.json")) as f:
        recipe = json.load(f)["training"]["recipe"]
    assert recipe["optimizer"] == "nesterov" and recipe["lookahead"] is True
