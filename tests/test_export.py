"""tn_keras.export: SavedModel and TFLite (LiteRT) exports of every zoo architecture.

Every registered architecture is built untrained with a fixed seed and exported once per format
per test module (module-scoped fixtures: conversions dominate the runtime). The real-data int8
accuracy checks are in test_export_real.py.
"""
import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from tn_keras import zoo
from tn_keras.export import FORMATS
from tn_keras.export import TFLiteModel
from tn_keras.export import UnsupportedOpsError
from tn_keras.export import export
from tn_keras.export import op_names
from tn_keras.export import read_manifest
from tn_keras.export.calibration import real_test_images
from tn_keras.export.manifest import sha256_tree
from tn_keras.export.tflite import unsupported_ops_from_message
from tn_keras.utils.files import sha256_file

ARCHITECTURES = zoo.list()


def _images(shape, n=6, seed=1):
    # Random raw pixels over the whole 0..255 range: polynomial networks amplify large inputs,
    # so this is a harder parity test than real (mostly dark) images.
    return np.random.default_rng(seed).uniform(0, 255, (n,) + tuple(shape)).astype(np.float32)


class Case:
    def __init__(self, name, model, folder):
        self.name, self.model, self.folder = name, model, folder
        self.shape = tuple(model.input_shape[1:])
        self.x = _images(self.shape)
        self.expected = np.asarray(model(self.x, training=False))


@pytest.fixture(scope="module", params=ARCHITECTURES)
def case(request, tmp_path_factory):
    keras.utils.set_random_seed(0)
    model = zoo.build(request.param)
    return Case(request.param, model, tmp_path_factory.mktemp(request.param))


@pytest.fixture(scope="module")
def saved_model_export(case):
    path = os.path.join(case.folder, "saved_model")
    # verify=False: the tests below reload it themselves (export's own check is covered by
    # test_existing_path_needs_overwrite), and a reload of a CIFAR model costs seconds.
    manifest = export(case.model, path, format="saved_model", model_name=case.name,
                      verify=False)
    return path, manifest


@pytest.fixture(scope="module")
def tflite_export(case):
    path = os.path.join(case.folder, case.name + ".tflite")
    manifest = export(case.model, path, format="tflite", model_name=case.name)
    return path, manifest


def test_every_architecture_is_covered():
    assert len(ARCHITECTURES) >= 5
    assert {"digits_taylornet", "mnist7_taylor", "cifar_taylornet"} <= set(ARCHITECTURES)


# --- SavedModel -----------------------------------------------------------------------------


def test_saved_model_reloads_with_the_keras_outputs(case, saved_model_export):
    path, _ = saved_model_export
    loaded = tf.saved_model.load(path)
    np.testing.assert_allclose(np.asarray(loaded.serve(tf.constant(case.x))), case.expected,
                               atol=1e-6, rtol=0)
    # The serving signature (what TF Serving calls) too, at another batch size.
    outputs = loaded.signatures["serving_default"](tf.constant(case.x[:2]))
    (result,) = outputs.values()
    np.testing.assert_allclose(np.asarray(result), case.expected[:2], atol=1e-6, rtol=0)


def test_saved_model_manifest(case, saved_model_export):
    path, manifest = saved_model_export
    assert read_manifest(path) == json.loads(json.dumps(manifest))
    assert manifest["format"] == "saved_model"
    assert manifest["sha256"] == sha256_tree(path)[0]
    assert manifest["input"]["shape"] == [None, *case.shape]
    assert manifest["input"]["value_range"] == "raw pixels 0..255"
    assert manifest["provenance"]["model"] == case.name
    assert manifest["keras_model_name"] == case.model.name and "source" not in manifest
    assert len(manifest["class_names"]) == case.expected.shape[-1]
    assert manifest["quantization"] is None
    assert manifest["versions"]["tensorflow"] == tf.__version__
    assert not [n for n in os.listdir(case.folder) if n.startswith(".tmp-")]


# --- float TFLite ---------------------------------------------------------------------------


def test_tflite_matches_keras(case, tflite_export, capfd):
    path, _ = tflite_export
    tfl = TFLiteModel(path)
    assert tfl.input_shape == (None, *case.shape) and not tfl.quantized
    np.testing.assert_allclose(tfl.predict(case.x), case.expected, atol=1e-4, rtol=0)
    # Batches of 32 and of 360 (60 copies of the images; the last batch of 32 partial).
    many, expected = np.concatenate([case.x] * 60), np.concatenate([case.expected] * 60)
    for batch_size in (32, 360):
        np.testing.assert_allclose(tfl.predict(many, batch_size=batch_size), expected,
                                   atol=1e-4, rtol=0)
    # LiteRT's "Created TensorFlow Lite XNNPACK delegate" notice does not reach the user.
    assert "XNNPACK" not in capfd.readouterr().err
    # A dynamic batch: whole batches, batches of 3 (a partial last one) and one image at a
    # time give the same outputs.
    np.testing.assert_allclose(tfl.predict(case.x, batch_size=3), tfl.predict(case.x, 1),
                               atol=1e-6, rtol=0)
    # uint8 images, as datasets.load returns them, give the same as their float values.
    pixels = np.round(case.x).astype(np.uint8)
    np.testing.assert_allclose(tfl.predict(pixels), tfl.predict(pixels.astype(np.float32)))


def test_tflite_has_builtin_ops_only(tflite_export):
    path, manifest = tflite_export
    with open(path, "rb") as f:
        ops = op_names(f.read())
    assert ops and ops == manifest["ops"]
    assert not [op for op in ops if op.startswith("CUSTOM") or "Flex" in op], ops
    # Cross-check with the runtime's own view (without delegates, which show up as DELEGATE).
    from ai_edge_litert.interpreter import Interpreter
    from ai_edge_litert.interpreter import OpResolverType

    interpreter = Interpreter(
        model_path=path,
        experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    runtime_ops = {op["op_name"] for op in interpreter._get_ops_details()}
    assert runtime_ops <= set(ops), runtime_ops


def test_tflite_manifest(case, tflite_export):
    path, manifest = tflite_export
    assert os.path.isfile(path + ".json")
    assert read_manifest(path) == json.loads(json.dumps(manifest))
    assert manifest["sha256"] == sha256_file(path)
    assert manifest["size_bytes"] == os.path.getsize(path)
    assert manifest["input"]["shape"] == [None, *case.shape]
    assert manifest["input"]["dtype"] == "float32"
    assert manifest["quantization"] is None
    assert manifest["parity_check"]["max_abs_diff"] <= 1e-4
    # Checked on real test images where the dataset is here (the 8x8 digits always are, in the
    # package; the others with TN_KERAS_DATA), in one batch; else on 4 random images.
    real = real_test_images(case.name, case.shape, 256)
    assert case.name != "digits_taylornet" or real is not None
    expected = ((256, "the first 256 ") if real is not None
                else (4, "uniform random 0..255, seed 0"))
    assert manifest["parity_check"]["images"] == expected[0]
    assert manifest["parity_check"]["inputs"].startswith(expected[1]), manifest["parity_check"]


# --- int8 (synthetic smoke test; real-data accuracy in test_export_real.py) -----------------


def test_tflite_int8_smoke(tmp_path):
    keras.utils.set_random_seed(0)
    model = zoo.build("digits_taylornet")
    calibration = _images((8, 8, 1), n=64, seed=2)
    path = str(tmp_path / "digits_int8.tflite")
    manifest = export(model, path, format="tflite_int8", representative_data=calibration,
                      model_name="digits_taylornet")
    tfl = TFLiteModel(path)
    assert tfl.quantized and tfl.input_dtype == np.int8 and tfl.output_dtype == np.int8
    x = _images((8, 8, 1), n=32, seed=3)
    got, want = tfl.predict(x), np.asarray(model(x, training=False))
    assert got.dtype == np.float32 and got.shape == want.shape
    np.testing.assert_allclose(got.sum(-1), 1.0, atol=0.05)
    assert np.max(np.abs(got - want)) < 0.05
    assert np.mean(got.argmax(-1) == want.argmax(-1)) >= 0.8
    quant = manifest["quantization"]
    assert (quant["input"]["scale"], quant["input"]["zero_point"]) == tfl.input_quantization
    assert (quant["output"]["scale"], quant["output"]["zero_point"]) == tfl.output_quantization
    assert quant["calibration"]["num_images"] == 64
    assert manifest["input"]["dtype"] == "int8"
    assert not [op for op in manifest["ops"] if op.startswith("CUSTOM")]


def test_tflite_int16x8_smoke(tmp_path):
    keras.utils.set_random_seed(0)
    model = zoo.build("mnist7_taylor")
    path = str(tmp_path / "m16.tflite")
    manifest = export(model, path, format="tflite_int16x8",
                      representative_data=_images((7, 7, 1), n=32, seed=2))
    tfl = TFLiteModel(path)
    assert tfl.input_dtype == np.float32 and not tfl.quantized
    x = _images((7, 7, 1), n=16, seed=3)
    np.testing.assert_allclose(tfl.predict(x), np.asarray(model(x, training=False)), atol=0.01)
    assert manifest["quantization"]["scheme"].startswith("16x8")
    assert not [op for op in manifest["ops"] if op.startswith("CUSTOM")]


def test_int8_needs_calibration_data(tmp_path):
    model = zoo.build("mnist7_taylor")
    with pytest.raises(ValueError, match="representative_data"):
        export(model, str(tmp_path / "m.tflite"), format="tflite_int8")
    assert not os.listdir(tmp_path)


# --- errors ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_model():
    keras.utils.set_random_seed(0)
    return zoo.build("mnist7_taylor")


def test_unknown_format_lists_the_valid_ones(tiny_model, tmp_path):
    with pytest.raises(ValueError) as info:
        export(tiny_model, str(tmp_path / "m"), format="coreml")
    for name in FORMATS:
        assert name in str(info.value)


@pytest.mark.parametrize("format", ["saved_model", "tflite"])
def test_existing_path_needs_overwrite(tiny_model, tmp_path, format):
    path = str(tmp_path / ("m" if format == "saved_model" else "m.tflite"))
    first = export(tiny_model, path, format=format)
    with pytest.raises(FileExistsError, match=path):
        export(tiny_model, path, format=format)
    second = export(tiny_model, path, format=format, overwrite=True)
    assert first["parity_check"]["max_abs_diff"] <= first["parity_check"]["atol"]
    # A SavedModel is not byte-reproducible (its fingerprint differs per write): compare the
    # recorded digest with the files actually there instead.
    digest = sha256_tree(path)[0] if format == "saved_model" else sha256_file(path)
    assert second["sha256"] == digest
    assert sorted(os.listdir(tmp_path)) == sorted(
        ["m"] if format == "saved_model" else ["m.tflite", "m.tflite.json"])


@pytest.mark.parametrize("path", ["", "  "])
def test_an_empty_path_is_refused_and_the_working_directory_kept(tiny_model, tmp_path,
                                                                 monkeypatch, path):
    # "" is not an existing path, yet its absolute form is the working directory: an export
    # to "" once replaced the folder it was run in.
    (tmp_path / "notes.txt").write_text("the user's")
    monkeypatch.chdir(tmp_path)
    for format in ("saved_model", "tflite"):
        with pytest.raises(ValueError, match="output path is empty"):
            export(tiny_model, path, format=format, overwrite=True)
    assert sorted(os.listdir(tmp_path)) == ["notes.txt"]


def test_unknown_spatial_size_is_a_clear_error(tmp_path):
    inputs = keras.Input((None, None, 1), name="image")
    x = keras.layers.Conv2D(2, 3)(inputs)
    outputs = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, outputs)
    for format in ("tflite", "tflite_int8"):
        with pytest.raises(ValueError, match="unknown input size"):
            export(model, str(tmp_path / "m.tflite"), format=format,
                   representative_data=np.zeros((1, 8, 8, 1)))
    assert not os.listdir(tmp_path)


def test_unknown_model_name(tiny_model, tmp_path):
    with pytest.raises(ValueError, match="Unknown model name"):
        export(tiny_model, str(tmp_path / "m.tflite"), format="tflite", model_name="mnist7_taylr")
    assert not os.listdir(tmp_path)


class _Erfinv(keras.layers.Layer):
    """An op with no builtin TFLite kernel (it would need the Flex delegate)."""

    def call(self, x):
        return keras.ops.erfinv(x / 512.0)


def test_ops_outside_the_builtins_are_named(tmp_path):
    inputs = keras.Input((4, 4, 1), name="image")
    model = keras.Model(inputs, _Erfinv()(inputs))
    path = str(tmp_path / "m.tflite")
    with pytest.raises(UnsupportedOpsError, match="Erfinv") as info:
        export(model, path, format="tflite")
    assert info.value.ops == ["Erfinv"]
    assert not os.listdir(tmp_path)  # nothing half-written


def test_unsupported_ops_parsing():
    message = ("error: 'tf.Erfinv' op is neither a custom op nor a flex op\n"
               "Some ops in the model are custom ops\nCustom ops: Erfinv, Lgamma\nDetails:")
    assert unsupported_ops_from_message(message) == ["Erfinv", "Lgamma"]
    assert unsupported_ops_from_message("something else went wrong") == []


def test_tflite_model_input_checks(tiny_model, tmp_path):
    path = str(tmp_path / "m.tflite")
    export(tiny_model, path, format="tflite", verify=False)
    tfl = TFLiteModel(path)
    x = _images((7, 7, 1), n=3)
    # (N, H, W) gains the channel axis; any other shape is refused.
    np.testing.assert_array_equal(tfl.predict(x[..., 0]), tfl.predict(x))
    with pytest.raises(ValueError, match="shape"):
        tfl.predict(np.zeros((2, 7, 7, 3)))
    assert tfl.predict(np.zeros((0, 7, 7, 1))).shape == (0, 10)
    with pytest.raises(FileNotFoundError):
        TFLiteModel(str(tmp_path / "missing.tflite"))


# --- CLI ------------------------------------------------------------------------------------


def test_cli_export(tmp_path, capsys):
    from tn_keras.cli import main

    out = str(tmp_path / "digits.tflite")
    args = ["export", "digits_taylornet", "--format", "tflite", "--out", out, "--weights", "none"]
    assert main(args) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["sha256"] == sha256_file(out)
    manifest = read_manifest(out)
    assert manifest["provenance"] == {
        "model": "digits_taylornet", "weights": None, "weights_sha256": None, "command": None,
        "data": None, "seed": None}
    assert manifest["keras_model_name"] == "digits_taylornet" and "source" not in manifest
    assert main(args) == 2
    assert "already exists" in capsys.readouterr().err
    assert main(args + ["--overwrite"]) == 0
    assert main(args + ["--overwrite", "--activation-quantile", "most"]) == 2
    assert "activation_quantile must be 'auto' or a number" in capsys.readouterr().err


def test_cli_evaluates_a_verified_tflite_export(tmp_path, capsys):
    from tn_keras.cli import main

    out = str(tmp_path / "digits_int8.tflite")
    assert main(["export", "digits_taylornet", "--format", "tflite_int8", "--out", out]) == 0
    capsys.readouterr()
    evaluate = ["evaluate", "digits_taylornet", "--tflite", out, "--max-examples", "60"]
    assert main(evaluate) == 0
    results = json.loads(capsys.readouterr().out)
    assert results["test"]["examples"] == 60
    assert 0.9 <= results["test"]["top1_agreement"] <= 1.0
    assert 0.0 <= results["test"]["accuracy"] <= 1.0
    # Another zoo model's name, a changed file, a missing manifest: one-line errors.
    assert main(["evaluate", "mnist7_taylor", "--tflite", out]) == 2
    assert "exported from 'digits_taylornet', not 'mnist7_taylor'" in capsys.readouterr().err
    # The same architecture with other weights: the agreement would compare unrelated models.
    other = str(tmp_path / "other")
    assert main(["train", "digits_taylornet", "--epochs", "1", "--max-train-examples", "32",
                 "--max-eval-examples", "20", "--out", other]) == 0
    capsys.readouterr()
    assert main(evaluate + ["--weights", other]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "was exported from weights with sha256" in err, err
    assert "pass the checkpoint it came from with --weights" in err
    with open(out, "ab") as f:
        f.write(b"\0")
    assert main(evaluate) == 2
    assert "does not match the sha256" in capsys.readouterr().err
    os.remove(out + ".json")
    assert main(evaluate) == 2
    assert "manifest" in capsys.readouterr().err


# --- docs -----------------------------------------------------------------------------------


def test_the_deployment_page_python_runs(tmp_path, monkeypatch):
    """docs/deployment.md's first Python block runs as written (in a fresh folder)."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    with open(os.path.join(root, "docs", "deployment.md"), encoding="utf-8") as f:
        text = f.read()
    code = text.split("```python\n", 1)[1].split("```", 1)[0]
    assert "ExportConfig(" in code
    monkeypatch.chdir(tmp_path)
    namespace = {}
    exec(compile(code, "docs/deployment.md", "exec"), namespace)
    assert namespace["manifest"]["provenance"]["model"] == "digits_taylornet"
    assert namespace["manifest"]["format"] == "tflite_int8"
    assert read_manifest("digits.tflite")["format"] == "tflite"
    assert np.mean(namespace["predictions"].argmax(-1) == namespace["labels"]) > 0.9
