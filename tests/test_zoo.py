"""The model zoo: registry, architectures, checkpoints, errors (synthetic data, no files)."""
import os

import keras
import numpy as np
import pytest

from tn_keras import artifacts
from tn_keras import zoo
from tn_keras.zoo import cards
from tn_keras.zoo import checkpoints
from tn_keras.zoo import saving
from tn_keras.zoo.registry import get_spec

# Every registered architecture, read from the registry: a new one is tested with no edit here.
ARCHITECTURES = zoo.list()


def _catalogued(name):
    """The facts catalogue.json caches for ``name`` (tests/test_cli_speed.py keeps the file
    equal to the live registry's)."""
    from tn_keras.zoo import catalogue

    return catalogue.read()[name]


@pytest.mark.parametrize("name", ARCHITECTURES)
def test_architecture_builds_trains_and_round_trips(name, tmp_path):
    keras.utils.set_random_seed(0)
    model = zoo.build(name)
    # The parameter count against an independent sum: every weight's size, BatchNorm's moving
    # statistics included, as the README and docs/zoo.md print it.
    parameters = sum(int(np.prod(weight.shape)) for weight in model.weights)
    assert model.count_params() == parameters
    record = zoo.info(name)
    assert record.parameters == parameters == _catalogued(name)["parameters"]
    assert record.macs_per_image > 0
    assert record.input_shape == tuple(model.input_shape[1:])
    assert record.dataset == get_spec(name).dataset
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
    # Refused as the CLI's --model-kwargs refuses them (width=0 built a 71-parameter model).
    for width in (0, -1, float("nan"), float("inf"), True, "wide", None):
        with pytest.raises(ValueError, match=r"width=.*expected a finite number > 0"):
            zoo.build("digits_taylornet", width=width)
    assert zoo.build("digits_taylornet", width=np.int64(1)).get_layer("cg1").filters == 16
    with pytest.raises(ValueError, match="may not contain '.'"):
        zoo.register("a.b", dataset="digits", recipe=zoo.TrainingRecipe(epochs=1))(len)


def test_unknown_name_lists_the_closest():
    with pytest.raises(ValueError, match="Did you mean: cifar_taylornet"):
        zoo.build("cifar_taylornt")
    with pytest.raises(ValueError, match="Registered models"):
        zoo.info("resnet50")


def test_list_patterns():
    """fnmatch patterns against the registry's names, filtered here with str methods."""
    names = zoo.list()
    assert names == sorted(names) and len(set(names)) == len(names)
    assert zoo.list("cifar*") == [n for n in names if n.startswith("cifar")]
    assert zoo.list("*relu") == [n for n in names if n.endswith("relu")]
    assert zoo.list("*_taylornet*") == [n for n in names if "_taylornet" in n]
    assert "cifar_convnet_relu" in zoo.list("*relu")  # the patterns match something
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

@pytest.mark.parametrize("name", zoo.list(pretrained=True))
def test_shipped_checkpoint_matches_its_manifest_and_loads(name):
    checkpoint = zoo.find(name)
    manifest = checkpoint.manifest
    assert checkpoint.shipped and checkpoint.full_name == name
    assert artifacts.verify(os.path.join(checkpoint.folder, "manifest.json")) == manifest
    assert manifest.kind == "checkpoint" and manifest["tag"] == checkpoint.tag
    if not manifest["training"].get("model_kwargs"):  # the default build of its architecture
        assert manifest["parameters"] == _catalogued(checkpoint.arch)["parameters"]
    assert manifest.provenance.command.startswith(f"tn-keras train {checkpoint.arch}")
    # No stale recipe fields: every recorded field is one TrainingRecipe has today. Fields
    # added since the run take defaults that reproduce the older trainer (AdamW, no label
    # smoothing, no averaging), so the record still builds the recipe it was trained with.
    import dataclasses

    recipe = manifest["training"]["recipe"]
    assert set(recipe) <= {f.name for f in dataclasses.fields(zoo.TrainingRecipe)}
    zoo.TrainingRecipe(**recipe)  # raises on a value the recipe no longer accepts
    if checkpoint.arch in ("digits_taylornet", "mnist7_taylor"):  # the fast ones
        model = zoo.load(name)
        assert model.input_shape[1:] == tuple(manifest["input_shape"])


def test_every_shipped_architecture_has_its_default_tag():
    shipped = {name.split(".")[0] for name in zoo.list(pretrained=True)}
    for arch in zoo.list():
        spec = get_spec(arch)
        assert (spec.default_tag is not None) == (arch in shipped), arch
        if spec.default_tag is not None:
            assert zoo.find(arch).full_name == f"{arch}.{spec.default_tag}"


@pytest.mark.parametrize("name", ARCHITECTURES)
def test_registry_counts_match_the_built_model(name):
    """The counts `zoo.info` gives without building (declared in the registration, or cached
    in catalogue.json) are the built model's."""
    from tn_keras.zoo.api import architecture_facts
    from tn_keras.zoo.complexity import model_macs

    spec = get_spec(name)
    model = zoo.build(name)
    facts = architecture_facts(name)
    assert facts["parameters"] == model.count_params()
    assert facts["macs_per_image"] == model_macs(model)
    for declared in ("parameters", "macs_per_image"):  # a user's registration may state them
        assert getattr(spec, declared) in (None, facts[declared]), declared


def test_info_reads_the_manifest_without_building(monkeypatch):
    from tn_keras.zoo import api

    def refuse(*args, **kwargs):
        raise AssertionError("info() built a model")

    monkeypatch.setattr(api, "_built_facts", refuse)
    monkeypatch.setattr(api, "model_facts", refuse)
    record = zoo.info("cifar_taylornet.fig_s3")
    assert record.tag == "fig_s3" and record.parameters == _catalogued("cifar_taylornet")[
        "parameters"]
    assert record.test_accuracy == zoo.find("cifar_taylornet.fig_s3").manifest["metrics"][
        "test_accuracy"]
    assert record.checkpoint.endswith(os.path.join("fig_s3", "cifar_taylornet.keras"))
    assert zoo.info("cifar_taylornet") == zoo.info("cifar_taylornet.kd")  # the default tag


def _local_checkpoint(arch, tag, seed=1, **build):
    """Write a checkpoint as `tn-keras train` does (file, manifest, card) and return the model."""
    keras.utils.set_random_seed(seed)
    model = zoo.build(arch, **build)
    folder = checkpoints.cache_dir(arch, tag)
    os.makedirs(folder, exist_ok=True)
    saving.write_checkpoint(model, folder, get_spec(arch), tag,
                            dict(metrics={}, training={"model_kwargs": build}),
                            artifacts.Provenance(command=f"tn-keras train {arch} --tag {tag}"))
    return model


def _x(shape, n=3):
    return np.random.default_rng(0).uniform(0, 255, (n,) + tuple(shape)).astype("float32")


def test_tags_local_retrain_never_shadows_a_shipped_tag(tmp_path, monkeypatch):
    monkeypatch.setenv("TN_KERAS_HOME", str(tmp_path))
    shipped = zoo.find("digits_taylornet")
    # A local folder named like the shipped tag is ignored; `train` refuses to write one.
    impostor = _local_checkpoint("digits_taylornet", shipped.tag)
    local = _local_checkpoint("digits_taylornet", "local", seed=2)
    assert zoo.find("digits_taylornet") == shipped
    assert zoo.find(f"digits_taylornet.{shipped.tag}") == shipped
    assert zoo.list("digits*", pretrained=True) == [shipped.full_name, "digits_taylornet.local"]
    x = _x((8, 8, 1))
    np.testing.assert_array_equal(zoo.load("digits_taylornet.local").predict(x, verbose=0),
                                  local.predict(x, verbose=0))
    assert not np.array_equal(zoo.load("digits_taylornet").predict(x, verbose=0),
                              impostor.predict(x, verbose=0))
    from tn_keras.training import train

    with pytest.raises(ValueError, match=f"digits_taylornet.{shipped.tag} ships with"):
        train("digits_taylornet", tag=shipped.tag, epochs=1)


def test_unknown_tag_lists_the_known_ones(tmp_path, monkeypatch):
    monkeypatch.setenv("TN_KERAS_HOME", str(tmp_path))
    with pytest.raises(ValueError, match=r"Unknown tag 'nope' for 'digits_taylornet'; known "
                                         r"tags: digits_taylornet\.e60\."):
        zoo.load("digits_taylornet.nope")
    with pytest.raises(ValueError, match="Invalid tag"):
        zoo.load("digits_taylornet.../x")


def test_architecture_without_shipped_weights_uses_its_local_tag(tmp_path, monkeypatch):
    monkeypatch.setenv("TN_KERAS_HOME", str(tmp_path))

    @zoo.register("test_unshipped", dataset="digits", recipe=zoo.TrainingRecipe(epochs=1))
    def test_unshipped(input_shape=(8, 8, 1), num_classes=10, classifier_activation="softmax",
                       name="test_unshipped"):
        """A user model with no shipped weights."""
        from tn_keras.zoo import blocks

        inputs = keras.Input(input_shape)
        x = blocks.cg_bn(inputs, 4, "cg1")
        return keras.Model(inputs, blocks.classifier_head(x, num_classes,
                                                           classifier_activation), name=name)

    try:
        with pytest.raises(FileNotFoundError, match="tn-keras train test_unshipped"):
            zoo.load("test_unshipped")
        assert zoo.list("test_*", pretrained=False) == ["test_unshipped"]
        model = _local_checkpoint("test_unshipped", "local")
        assert zoo.find("test_unshipped").full_name == "test_unshipped.local"
        assert zoo.info("test_unshipped").tag == "local"
        x = _x((8, 8, 1))
        np.testing.assert_array_equal(zoo.load("test_unshipped").predict(x, verbose=0),
                                      model.predict(x, verbose=0))
    finally:
        zoo.unregister("test_unshipped")


def test_fine_tuning_head_is_new_and_body_is_pretrained():
    pretrained = zoo.load("digits_taylornet", compile=False)
    tuned = zoo.load("digits_taylornet", num_classes=3)
    assert tuned.output_shape == (None, 3)
    assert tuned.get_layer("logits").kernel.shape == (64, 3)
    for layer in tuned.layers:
        if layer.name in ("logits", "predictions"):
            continue
        for got, want in zip(layer.get_weights(), pretrained.get_layer(layer.name).get_weights()):
            np.testing.assert_array_equal(got, want)
    probs = tuned.predict(_x((8, 8, 1)), verbose=0)
    np.testing.assert_allclose(probs.sum(-1), 1.0, rtol=1e-5)  # keeps the softmax
    features = zoo.load("digits_taylornet", include_top=False)
    assert features.layers[-1].name == "embedding" and features.output_shape == (None, 64)
    np.testing.assert_array_equal(
        features.predict(_x((8, 8, 1)), verbose=0),
        keras.Model(pretrained.inputs, pretrained.get_layer("embedding").output).predict(
            _x((8, 8, 1)), verbose=0))


def test_transfer_body_copies_all_but_the_head():
    source = zoo.load("digits_taylornet", compile=False)
    keras.utils.set_random_seed(5)
    target = zoo.build("digits_taylornet", num_classes=4)
    copied = saving.transfer_body(source, target)
    assert "logits" not in copied and {"cg1", "cg2", "cg3"} <= set(copied)
    np.testing.assert_array_equal(target.get_layer("cg3").get_weights()[0],
                                  source.get_layer("cg3").get_weights()[0])
    with pytest.raises(ValueError, match="layer 'cg1' has weights"):
        saving.transfer_body(source, zoo.build("digits_taylornet", width=0.5))


def test_classifier_activation_none_gives_logits():
    keras.utils.set_random_seed(0)
    probs_model = zoo.build("digits_taylornet")
    logits_model = zoo.build("digits_taylornet", classifier_activation=None)
    logits_model.set_weights(probs_model.get_weights())
    x = _x((8, 8, 1), n=8)
    logits = logits_model.predict(x, verbose=0)
    assert not np.allclose(logits.sum(-1), 1.0) and (logits < 0).any()
    exp = np.exp(logits - logits.max(-1, keepdims=True))
    np.testing.assert_allclose(exp / exp.sum(-1, keepdims=True),
                               probs_model.predict(x, verbose=0), rtol=1e-5, atol=1e-6)


def test_builder_arguments_are_checked_in_one_place():
    message = r"\['bogus'\] are not arguments of the 'digits_taylornet' builder"
    with pytest.raises(ValueError, match=message):
        zoo.build("digits_taylornet", bogus=1)
    from tn_keras.training import train

    with pytest.raises(ValueError, match=message):
        train("digits_taylornet", epochs=1, model_kwargs={"bogus": 1})


def test_train_takes_name_dot_tag_and_refuses_two_tags():
    from tn_keras.training import train

    with pytest.raises(ValueError, match="names tag 'quick' but tag='other'"):
        train("digits_taylornet.quick", tag="other", epochs=1)
    with pytest.raises(ValueError, match="Invalid tag"):
        train("digits_taylornet", tag="../up", epochs=1)


def test_same_weights_give_the_same_checkpoint_bytes(tmp_path):
    keras.utils.set_random_seed(0)
    model = zoo.build("digits_taylornet")
    paths = [str(tmp_path / f"{i}.keras") for i in range(2)]
    for path in paths:
        checkpoints.save_reproducible(model, path)
    assert artifacts.sha256_file(paths[0]) == artifacts.sha256_file(paths[1])
    restored = keras.saving.load_model(paths[1], safe_mode=True)
    x = _x((8, 8, 1))
    np.testing.assert_array_equal(restored.predict(x, verbose=0), model.predict(x, verbose=0))


def test_load_from_a_path_and_refusals(tmp_path, monkeypatch):
    monkeypatch.setenv("TN_KERAS_HOME", str(tmp_path))
    model = _local_checkpoint("mnist7_taylor", "mine")
    folder = checkpoints.cache_dir("mnist7_taylor", "mine")
    x = _x((7, 7, 1))
    np.testing.assert_array_equal(zoo.load("mnist7_taylor", weights=folder).predict(x, verbose=0),
                                  model.predict(x, verbose=0))
    with pytest.raises(ValueError, match="is for 'mnist7_taylor', not 'digits_taylornet'"):
        zoo.load("digits_taylornet", weights=folder)
    lone = tmp_path / "lone.keras"
    model.save(str(lone))
    with pytest.raises(FileNotFoundError, match="cannot be verified"):
        zoo.load("mnist7_taylor", weights=str(lone))
    path = os.path.join(folder, "mnist7_taylor.keras")
    with open(path, "r+b") as f:  # flip one byte in the middle
        f.seek(os.path.getsize(path) // 2)
        byte = f.read(1)
        f.seek(-1, os.SEEK_CUR)
        f.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(zoo.ChecksumError, match="corrupt or was replaced"):
        zoo.load("mnist7_taylor.mine")


def test_every_cli_command_prints_the_checkpoint_it_used(capsys):
    from tn_keras.cli import main

    assert main(["info", "digits_taylornet"]) == 0
    assert "digits_taylornet.e60" in capsys.readouterr().err
    assert main(["card", "mnist7_taylor.eq3_e20"]) == 0
    captured = capsys.readouterr()
    assert "checkpoint mnist7_taylor.eq3_e20 (shipped)" in captured.err
    assert captured.out.startswith("---\n")  # the card's Hub metadata, then its title
    assert "\n---\n\n# mnist7_taylor.eq3_e20\n" in captured.out
    assert main(["card", "mnist7_taylor.nope"]) == 2
    assert "known tags: mnist7_taylor.eq3_e20" in capsys.readouterr().err


@pytest.mark.slow  # a fresh process that imports JAX and Keras: about 20 s here
def test_tags_info_and_loading_work_without_tensorflow():
    from _no_tensorflow import run_without_tensorflow

    result = run_without_tensorflow(
        "import numpy as np\n"
        "from tn_keras import zoo\n"
        "print(zoo.list('cifar*', pretrained=True))\n"
        "print(zoo.info('cifar_taylornet.fig_s3').parameters)\n"
        "print(zoo.find('digits_taylornet').full_name)\n"
        "print(zoo.load('digits_taylornet', num_classes=3).output_shape)\n"
        "p = zoo.load('digits_taylornet').predict(np.zeros((2, 8, 8, 1), 'float32'), verbose=0)\n"
        "print(np.allclose(p.sum(-1), 1.0))\n")
    assert result.returncode == 0, result.stderr[-2000:]
    # The shipped CIFAR checkpoints, read off the package folder rather than listed here.
    shipped_root = os.path.join(os.path.dirname(os.path.dirname(__file__)), "saved_models")
    shipped_cifar = sorted(f"{arch}.{tag}" for arch in os.listdir(shipped_root)
                           if arch.startswith("cifar")
                           for tag in os.listdir(os.path.join(shipped_root, arch)))
    assert result.stdout.splitlines()[-5:] == [
        str(shipped_cifar), str(_catalogued("cifar_taylornet")["parameters"]),
        "digits_taylornet.e60", "(None, 3)", "True"]


def test_train_init_from_records_where_it_started(tmp_path, monkeypatch):
    from tn_keras.cli import main

    monkeypatch.setenv("TN_KERAS_HOME", str(tmp_path))
    args = ["train", "digits_taylornet", "--tag", "tuned", "--init-from", "digits_taylornet",
            "--epochs", "1", "--max-train-examples", "64", "--max-eval-examples", "60"]
    assert main(args) == 0
    tuned = zoo.find("digits_taylornet.tuned")
    shipped = zoo.find("digits_taylornet")
    provenance = tuned.manifest.provenance
    assert (provenance.model, provenance.weights_sha256) == (shipped.full_name,
                                                            shipped.manifest.sha256)
    assert provenance.command.endswith("--tag tuned --init-from digits_taylornet")
    assert f"Started from `{shipped.full_name}`" in cards.render(tuned.manifest)
    with open(os.path.join(tuned.folder, "README.md"), encoding="utf-8") as f:
        assert f.read() == cards.render(tuned.manifest)
    # Pretrained start: far above chance after one epoch on 64 images.
    assert tuned.manifest["metrics"]["test_accuracy"] > 0.5


def test_train_freeze_body_trains_the_head_only(tmp_path, monkeypatch):
    from tn_keras.cli import main
    from tn_keras.training import TrainConfig

    monkeypatch.setenv("TN_KERAS_HOME", str(tmp_path))
    args = ["train", "digits_taylornet", "--tag", "head", "--init-from", "digits_taylornet",
            "--freeze-body", "--epochs", "1", "--max-train-examples", "64",
            "--max-eval-examples", "60"]
    assert main(args) == 0
    head = zoo.load("digits_taylornet.head", compile=False)
    shipped = zoo.load("digits_taylornet", compile=False)
    assert zoo.find("digits_taylornet.head").manifest.provenance.command.endswith(
        "--init-from digits_taylornet --freeze-body")
    # Every body weight (BatchNorm statistics included) as loaded; the head trained; the
    # written model is unfrozen, like any checkpoint.
    changed = {layer.name for layer in head.layers
               if any(not np.array_equal(a, b) for a, b in
                      zip(layer.get_weights(), shipped.get_layer(layer.name).get_weights()))}
    assert changed == {"logits"}
    assert all(layer.trainable for layer in head.layers)
    with pytest.raises(ValueError, match=r"^freeze_body=True needs init_from"):
        TrainConfig(freeze_body=True)


def test_init_head_starts_from_the_checkpoints_head_too(tmp_path):
    """``init_head`` goes on training the same task: the run starts from the checkpoint's
    classifier head too, where plain ``init_from`` starts a new one."""
    import keras

    from tn_keras.training import TrainConfig
    from tn_keras.training import train

    class HeadAtStart(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.weights = [np.array(w) for w in self.model.get_layer("logits").get_weights()]

    shipped = zoo.load("digits_taylornet", compile=False).get_layer("logits").get_weights()
    starts = {}
    for init_head in (False, True):
        seen = HeadAtStart()
        _, manifest = train("digits_taylornet", init_from="digits_taylornet", init_head=init_head,
                            epochs=1, max_train_examples=64, max_eval_examples=60, verbose=0,
                            out=str(tmp_path / str(init_head)), callbacks=[seen])
        starts[init_head] = seen.weights
    assert manifest["training"]["command"].endswith("--init-from digits_taylornet --init-head")
    for ours, theirs in zip(starts[True], shipped):
        np.testing.assert_array_equal(ours, theirs)
    assert not np.array_equal(starts[False][0], shipped[0])
    with pytest.raises(ValueError, match=r"^init_head=True needs init_from"):
        TrainConfig(init_head=True)


def test_init_from_another_width_names_the_argument_and_the_layer(tmp_path):
    from tn_keras.training import train
    with pytest.raises(ValueError, match=r"^init_from='digits_taylornet\.e60' \(--init-from\): "
                                         r"Copying weights .* layer 'cg1' has weights"):
        train("digits_taylornet", init_from="digits_taylornet", model_kwargs={"width": 0.5},
              epochs=1, out=str(tmp_path / "r"), verbose=0)
    assert not (tmp_path / "r" / "digits_taylornet.keras").exists()
