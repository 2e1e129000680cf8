"""The model zoo: registry, architectures, checkpoints, errors (synthetic data, no files)."""
import json
import os
import shutil

import keras
import numpy as np
import pytest

from tn_keras import zoo
from tn_keras.zoo import checkpoints

# Parameter counts as documented in the README's zoo table (all weights, BatchNorm's moving
# statistics included); a change of architecture must update both.
DOCUMENTED_PARAMETERS = {
    "cifar_convnet_relu": 928_714,
    "cifar_taylornet": 1_101_258,
    "digits_taylornet": 32_122,
    "fashion_taylornet": 203_062,
    "mnist7_taylor": 12_750,
    "mnist_convnet_relu": 72_426,
    "mnist_taylornet": 90_834,
}


def test_every_architecture_is_documented():
    assert zoo.list() == sorted(DOCUMENTED_PARAMETERS)


@pytest.mark.parametrize("name", sorted(DOCUMENTED_PARAMETERS))
def test_architecture_builds_trains_and_round_trips(name, tmp_path):
    keras.utils.set_random_seed(0)
    model = zoo.build(name)
    assert model.count_params() == DOCUMENTED_PARAMETERS[name]
    record = zoo.info(name)
    assert record.parameters == DOCUMENTED_PARAMETERS[name]
    assert record.macs_per_image > 0
    assert len(record.class_names) == record.num_classes == model.output_shape[-1]
    # Raw 0..255 images in, class probabilities out.
    x = np.random.default_rng(0).uniform(0, 255, (4,) + record.input_shape).astype("float32")
    y = np.arange(4) % record.num_classes
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    loss = model.train_on_batch(x, y)
    assert np.isfinite(loss)
    probs = model.predict(x, verbose=0)
    np.testing.assert_allclose(probs.sum(-1), 1.0, rtol=1e-5)
    path = str(tmp_path / f"{name}.keras")
    model.save(path)
    restored = keras.saving.load_model(path, safe_mode=True)
    np.testing.assert_array_equal(restored.predict(x, verbose=0), probs)


def test_taylornets_have_no_activation_but_the_classifier():
    for name in zoo.list():
        if zoo.info(name).family != "taylornet":
            continue
        model = zoo.build(name)
        for layer in model.layers:
            assert not isinstance(layer, (keras.layers.ReLU, keras.layers.Activation)) or (
                layer.name == "predictions"), (name, layer.name)
            assert getattr(layer, "activation", None) in (None, keras.activations.linear) or (
                layer.name == "predictions"), (name, layer.name)


def test_build_overrides():
    model = zoo.build("digits_taylornet", num_classes=3, width=0.5, classifier_activation=None)
    assert model.output_shape == (None, 3)
    assert model.get_layer("cg1").filters == 8
    assert zoo.build("mnist_taylornet", input_shape=(32, 32, 1)).input_shape == (None, 32, 32, 1)
    with pytest.raises(ValueError, match="Invalid override"):
        zoo.build("digits_taylornet", no_such_argument=1)


def test_unknown_name_lists_the_closest():
    with pytest.raises(ValueError, match="Did you mean: cifar_taylornet"):
        zoo.build("cifar_taylornt")
    with pytest.raises(ValueError, match="Registered models"):
        zoo.info("resnet50")


def test_list_patterns():
    assert zoo.list("cifar*") == ["cifar_convnet_relu", "cifar_taylornet"]
    assert zoo.list("*relu") == ["cifar_convnet_relu", "mnist_convnet_relu"]
    assert zoo.list("nothing*") == []


def test_users_register_their_own():
    @zoo.register("test_tiny", dataset="digits",
                  recipe=zoo.TrainingRecipe(epochs=1), family="baseline")
    def test_tiny(input_shape=(8, 8, 1), num_classes=10, name="test_tiny"):
        """A tiny user model."""
        inputs = keras.Input(input_shape)
        x = keras.layers.Flatten(name="embedding")(inputs)
        return keras.Model(inputs, keras.layers.Dense(num_classes, activation="softmax")(x))

    try:
        assert "test_tiny" in zoo.list()
        assert zoo.info("test_tiny").description == "A tiny user model."
        with pytest.raises(ValueError, match="already registered"):
            zoo.register("test_tiny", dataset="digits", recipe=zoo.TrainingRecipe(epochs=1))(
                test_tiny)
    finally:
        zoo.unregister("test_tiny")
    assert "test_tiny" not in zoo.list()


def test_wrong_input_shape_states_the_expected_shape():
    model = zoo.build("digits_taylornet")
    with pytest.raises(ValueError, match=r"expected shape=\(None, 8, 8, 1\)"):
        model.predict(np.zeros((2, 9, 9, 1), "float32"), verbose=0)


# --- checkpoints -----------------------------------------------------------------------------

@pytest.mark.parametrize("name", zoo.list(pretrained=True) or ["<none shipped>"])
def test_shipped_checkpoint_matches_its_manifest_and_loads(name):
    if name == "<none shipped>":
        pytest.skip("no checkpoint ships yet")
    folder, manifest = checkpoints.find_checkpoint(name)
    assert manifest["name"] == name
    assert checkpoints.verify_checkpoint(folder, manifest, name)
    for key in ("sha256", "parameters", "dataset", "metrics", "training", "versions"):
        assert key in manifest, key
    assert manifest["parameters"] == DOCUMENTED_PARAMETERS[name]
    assert manifest["training"]["command"].startswith(f"tn-keras train {name}")
    model = zoo.load(name)
    assert model.input_shape[1:] == tuple(manifest["input_shape"])


def _fake_checkpoint(folder, name, model):
    """A checkpoint folder with a manifest, as `tn-keras train` writes it."""
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, f"{name}.keras")
    model.save(path)
    from tn_keras.utils.files import sha256_file

    with open(os.path.join(folder, "manifest.json"), "w") as f:
        json.dump({"name": name, "file": f"{name}.keras", "sha256": sha256_file(path)}, f)
    return path


def test_load_from_the_cache_and_from_a_path(tmp_path, monkeypatch):
    monkeypatch.setenv("TN_KERAS_HOME", str(tmp_path))
    keras.utils.set_random_seed(1)
    model = zoo.build("mnist7_taylor")
    _fake_checkpoint(checkpoints.cache_dir("mnist7_taylor"), "mnist7_taylor", model)
    x = np.random.default_rng(0).uniform(0, 255, (3, 7, 7, 1)).astype("float32")
    if checkpoints.read_manifest(checkpoints.shipped_dir("mnist7_taylor")) is None:
        assert "mnist7_taylor" in zoo.list(pretrained=True)
        np.testing.assert_array_equal(zoo.load("mnist7_taylor").predict(x, verbose=0),
                                      model.predict(x, verbose=0))
    from_path = zoo.load("mnist7_taylor", weights=checkpoints.cache_dir("mnist7_taylor"))
    np.testing.assert_array_equal(from_path.predict(x, verbose=0), model.predict(x, verbose=0))


def test_corrupted_checkpoint_is_refused(tmp_path):
    folder = str(tmp_path / "digits")
    path = _fake_checkpoint(folder, "digits_taylornet", zoo.build("digits_taylornet"))
    with open(path, "r+b") as f:  # flip one byte in the middle
        f.seek(os.path.getsize(path) // 2)
        byte = f.read(1)
        f.seek(-1, os.SEEK_CUR)
        f.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(zoo.ChecksumError, match="corrupt or was replaced"):
        zoo.load("digits_taylornet", weights=folder)


def test_swapped_checkpoint_is_refused(tmp_path):
    digits = str(tmp_path / "digits")
    mnist7 = str(tmp_path / "mnist7")
    _fake_checkpoint(digits, "digits_taylornet", zoo.build("digits_taylornet"))
    _fake_checkpoint(mnist7, "mnist7_taylor", zoo.build("mnist7_taylor"))
    # Another model's file under this model's name: the checksum no longer matches.
    shutil.copy(os.path.join(mnist7, "mnist7_taylor.keras"),
                os.path.join(digits, "digits_taylornet.keras"))
    with pytest.raises(zoo.ChecksumError):
        zoo.load("digits_taylornet", weights=digits)
    # A whole checkpoint folder of another model: its manifest names the other model.
    with pytest.raises(ValueError, match="is for 'mnist7_taylor', not 'digits_taylornet'"):
        zoo.load("digits_taylornet", weights=mnist7)


def test_missing_checkpoint_and_manifest_errors(tmp_path, monkeypatch):
    monkeypatch.setenv("TN_KERAS_HOME", str(tmp_path))
    if checkpoints.read_manifest(checkpoints.shipped_dir("cifar_convnet_relu")) is None:
        with pytest.raises(FileNotFoundError, match="tn-keras train cifar_convnet_relu"):
            zoo.load("cifar_convnet_relu")
    lone = tmp_path / "lone.keras"
    zoo.build("mnist7_taylor").save(str(lone))
    with pytest.raises(FileNotFoundError, match="cannot be verified"):
        zoo.load("mnist7_taylor", weights=str(lone))
