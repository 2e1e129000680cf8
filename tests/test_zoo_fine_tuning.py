"""Fine-tuning straight after `zoo.load(..., num_classes=N)`, and the input-scale check at the
zoo's door (synthetic data, the shipped digits_taylornet checkpoint)."""
import subprocess
import sys
import warnings

import keras
import numpy as np
import pytest

from tn_keras import zoo
from tn_keras import zoo_model
from tn_keras.zoo import api
from tn_keras.zoo_model import ZooModel
from tn_keras.zoo_model import as_zoo_model

pytestmark = pytest.mark.skipif(not zoo.list("digits_taylornet", pretrained=True),
                                reason="needs the shipped digits_taylornet checkpoint")


def _classes(n=48, num_classes=3, seed=0):
    """Images of ``num_classes`` synthetic classes (a bright square in a class-given corner),
    raw pixels 0..255 as the zoo takes them."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % num_classes
    x = rng.uniform(0, 40, size=(n, 8, 8, 1)).round().astype("float32")
    for i, label in enumerate(y):
        row, col = divmod(int(label), 2)
        x[i, 4 * row:4 * row + 4, 4 * col:4 * col + 4] += 200.0
    return x, y


def _batch_norm_statistics(model):
    return {layer.name: [w.copy() for w in layer.get_weights()[2:]] for layer in model.layers
            if isinstance(layer, keras.layers.BatchNormalization)}


def test_fit_runs_straight_after_load_with_a_new_head():
    keras.utils.set_random_seed(0)
    model = zoo.load("digits_taylornet", num_classes=3)
    assert model.optimizer is not None and model.compiled
    assert float(model.optimizer.learning_rate.numpy()) == pytest.approx(api.BODY_LEARNING_RATE)
    x, y = _classes()
    history = model.fit(x, y, epochs=3, batch_size=16, verbose=0)
    assert set(history.history) >= {"loss", "accuracy"}
    assert np.isfinite(history.history["loss"]).all()
    assert history.history["loss"][-1] < history.history["loss"][0]


def test_freeze_body_trains_the_head_only_and_keeps_batch_norm_statistics():
    keras.utils.set_random_seed(0)
    model = zoo.load("digits_taylornet", num_classes=3, freeze_body=True)
    assert {w.path.split("/")[0] for w in model.trainable_weights} == {"logits"}
    assert float(model.optimizer.learning_rate.numpy()) == pytest.approx(api.HEAD_LEARNING_RATE)
    body = {layer.name: [w.copy() for w in layer.get_weights()] for layer in model.layers
            if layer.name not in ("logits", "predictions")}
    statistics = _batch_norm_statistics(model)
    assert statistics  # digits_taylornet has BatchNorm: the check below means something
    head = model.get_layer("logits").get_weights()[0].copy()
    x, y = _classes()
    model.fit(x, y, epochs=2, batch_size=16, verbose=0)
    for name, weights in body.items():  # BatchNorm in inference mode: moving stats unchanged
        for got, want in zip(model.get_layer(name).get_weights(), weights):
            np.testing.assert_array_equal(got, want, err_msg=name)
    assert not np.array_equal(model.get_layer("logits").get_weights()[0], head)
    api.set_body_trainable(model, True)  # and back: unfrozen, compiled again, it all trains
    api.compile_for_fine_tuning(model)
    assert float(model.optimizer.learning_rate.numpy()) == pytest.approx(api.BODY_LEARNING_RATE)
    model.fit(x, y, epochs=1, batch_size=16, verbose=0)
    moved = _batch_norm_statistics(model)
    assert any(not np.array_equal(a, b) for name in statistics
               for a, b in zip(moved[name], statistics[name]))


def test_fine_tuning_options_are_checked():
    with pytest.raises(ValueError, match="freeze_body=True needs num_classes"):
        zoo.load("digits_taylornet", freeze_body=True)
    uncompiled = zoo.load("digits_taylornet", num_classes=3, compile=False)
    assert not uncompiled.compiled
    logits = zoo.build("digits_taylornet", num_classes=3, classifier_activation=None)
    api.compile_for_fine_tuning(logits, learning_rate=1e-3)
    assert logits.loss.get_config()["from_logits"] is True


def test_the_default_body_rate_is_the_one_measured_for_the_models_dataset():
    def rate(model):
        return float(keras.ops.convert_to_numpy(model.optimizer.learning_rate))

    # CIFAR-10's body rate, from the shipped checkpoint's manifest or the spec of an untrained
    # build; the head rate does not depend on the dataset.
    assert rate(zoo.load("cifar_taylornet", num_classes=5)) == pytest.approx(
        api.BODY_LEARNING_RATES["cifar10"])
    assert rate(zoo.load("cifar_taylornet", weights=None, num_classes=5)) == pytest.approx(
        api.BODY_LEARNING_RATES["cifar10"])
    assert rate(zoo.load("cifar_taylornet", num_classes=5, freeze_body=True)) == pytest.approx(
        api.HEAD_LEARNING_RATE)
    assert "digits" not in api.BODY_LEARNING_RATES
    assert rate(zoo.load("digits_taylornet", num_classes=3)) == pytest.approx(
        api.BODY_LEARNING_RATE)


@pytest.fixture
def fresh_warning(monkeypatch):
    monkeypatch.setattr(zoo_model, "_warned", False)


def _warned(images):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        api.check_pixel_scale(images)
    return [str(w.message) for w in caught]


def test_input_scale_warning_fires_on_0_to_1_floats_only(fresh_warning):
    x, _ = _classes(n=4)
    assert _warned(x) == []                        # raw 0..255 floats
    assert _warned(x.astype("uint8")) == []        # raw 0..255 integers
    assert _warned(np.zeros((2, 8, 8, 1), "float32")) == []  # a black image is not a hint
    assert _warned(np.ones((2, 8, 8, 1), "float32")) == []   # whole numbers: raw pixels
    messages = _warned(x / 255.0)
    assert len(messages) == 1 and "multiply by 255" in messages[0]
    assert "images look scaled to 0..1" in messages[0]
    assert _warned(x / 255.0) == []                # once per process


def _warnings_of(call):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = call()
    return [str(w.message) for w in caught if "0..1" in str(w.message)], result


@pytest.mark.parametrize("entry", ["predict", "evaluate", "fit", "call", "predict_on_batch"])
def test_a_loaded_model_warns_at_its_own_door(fresh_warning, entry):
    # zoo.load returns a ZooModel: plain Keras calls check the pixel scale, not only
    # zoo.predict. Raw pixels pass silently; 0..1 floats warn once, naming the argument.
    model = zoo.load("digits_taylornet", num_classes=3, freeze_body=True)
    assert isinstance(model, ZooModel)
    x, y = _classes(n=4)
    calls = {"predict": lambda a: model.predict(a, verbose=0),
             "evaluate": lambda a: model.evaluate(a, y, verbose=0),
             "fit": lambda a: model.fit(a, y, epochs=1, verbose=0),
             "call": lambda a: model(a),
             "predict_on_batch": lambda a: model.predict_on_batch(a)}
    assert _warnings_of(lambda: calls[entry](x))[0] == []
    assert _warnings_of(lambda: calls[entry](x.astype("uint8")))[0] == []
    messages, _ = _warnings_of(lambda: calls[entry](x / 255.0))
    assert len(messages) == 1 and "multiply by 255" in messages[0], messages
    assert _warnings_of(lambda: calls[entry](x / 255.0))[0] == []  # once per process


def test_a_zoo_model_computes_what_the_plain_model_computes(tmp_path):
    # Same graph, same weights, same answers; its .keras file loads back as a ZooModel in a
    # fresh process once tn_keras is imported (the layers and the class are registered then).
    plain = zoo.load("digits_taylornet")
    x, _ = _classes(n=6)
    bare = keras.Model(plain.inputs, plain.outputs, name=plain.name)
    assert not as_zoo_model(bare).compiled            # an uncompiled model stays uncompiled
    bare.compile(optimizer="sgd", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    rewrapped = as_zoo_model(bare)
    assert isinstance(rewrapped, ZooModel) and rewrapped.compiled
    assert rewrapped.get_compile_config()["loss"] == "sparse_categorical_crossentropy"
    assert as_zoo_model(rewrapped) is rewrapped

    class Subclassed(keras.Model):  # no functional graph to rewrap: returned as it is
        def call(self, x):
            return x

    subclassed = Subclassed()
    assert as_zoo_model(subclassed) is subclassed
    np.testing.assert_array_equal(rewrapped.predict(x, verbose=0), plain.predict(x, verbose=0))
    path = tmp_path / "m.keras"
    plain.save(path)
    code = ("import sys, keras, numpy as np, tn_keras; m = keras.saving.load_model(sys.argv[1]); "
            "print(type(m).__name__, m.predict(np.load(sys.argv[2]), verbose=0).argmax(-1))")
    np.save(tmp_path / "x.npy", x)
    out = subprocess.run([sys.executable, "-c", code, str(path), str(tmp_path / "x.npy")],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    expected = plain.predict(x, verbose=0).argmax(-1)
    assert out.stdout.split()[0] == "ZooModel"
    assert out.stdout.strip().endswith(str(expected).strip()), (out.stdout, expected)


def test_predict_helper_warns_once_and_predicts(fresh_warning):
    model = zoo.load("digits_taylornet")
    x, _ = _classes(n=4)
    with pytest.warns(UserWarning, match="multiply by 255"):
        scaled = api.predict(model, x / 255.0)
    np.testing.assert_allclose(api.predict(model, x), model.predict(x, verbose=0))
    assert scaled.shape == (4, 10)


@pytest.mark.backend_neutral
@pytest.mark.parametrize("pad", [False, True])
def test_predict_pads_to_whole_batches_without_changing_a_prediction(monkeypatch, pad):
    # Under JAX every new batch shape compiles the predict step again (seconds on a CPU): a
    # ZooModel pads NumPy input to whole batches there, so counts 40, 45 and 7 share one
    # compiled step. The padded images' predictions are cut off; the rest are unchanged.
    monkeypatch.setattr(zoo_model, "PAD_PARTIAL_BATCHES", pad)
    model = zoo.load("digits_taylornet", compile=False)
    x, _ = _classes(n=15)
    x = np.concatenate([x, x, x])
    alone = np.concatenate([model.predict_on_batch(x[i:i + 1]) for i in range(45)])
    traced = []
    step = model.predict_step

    def counting_step(*args):  # (data) under TensorFlow, (state, data) under JAX
        traced.append(keras.tree.flatten(args[-1])[0].shape[0])  # once per trace
        return step(*args)

    model.predict_step = counting_step
    model.predict_function = None  # rebuilt around counting_step at the next call
    for count in (40, 45, 7):
        out = model.predict(x[:count], batch_size=16, verbose=0)
        assert out.shape == (count, 10)
        np.testing.assert_allclose(out, alone[:count], rtol=1e-5, atol=1e-6)
    if keras.backend.backend() == "jax":  # the others trace per signature, not per shape
        assert traced == [16] if pad else len(set(traced)) > 1, traced
