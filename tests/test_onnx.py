"""ONNX export of every zoo model, checked with ONNX Runtime against Keras."""
import json
import os

import keras
import numpy as np
import pytest

from tn_keras import artifacts
from tn_keras import zoo
from tn_keras.export import ONNXModel
from tn_keras.export import export
from tn_keras.export import read_manifest
from tn_keras.export.api import TFLITE_ATOL

SLOW = {"cifar_taylornet", "cifar_convnet_relu", "fashion_taylornet", "cifar_taylornet_res",
        "cifar_taylornet_res_small"}


def _images(shape, n, seed):
    return np.random.default_rng(seed).uniform(0, 255, (n,) + tuple(shape)).astype("float32")


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n in SLOW else n
                                  for n in zoo.list()])
def test_onnx_matches_keras_for_every_zoo_model(name, tmp_path):
    path = str(tmp_path / f"{name}.onnx")
    if zoo.list(name, pretrained=True):
        model = zoo.load(name, compile=False)
        checkpoint = zoo.find(name)
        manifest = export(model, path, format="onnx", model_name=checkpoint.full_name,
                          checkpoint=checkpoint.path)
    else:  # an architecture with no shipped weights: its freshly built model
        keras.utils.set_random_seed(0)
        model = zoo.build(name)
        manifest = export(model, path, format="onnx", model_name=name)
    # Checked independently of export()'s own check: other images, a batch of 5.
    x = _images(model.input_shape[1:], 5, seed=1)
    got = ONNXModel(path).predict(x)
    np.testing.assert_allclose(got, np.asarray(model(x, training=False)), atol=TFLITE_ATOL,
                               rtol=0)
    assert manifest["parity_check"]["max_abs_diff"] <= manifest["parity_check"]["atol"] \
        == TFLITE_ATOL
    assert read_manifest(path, "onnx") == json.loads(json.dumps(manifest))
    assert artifacts.verify(path + ".json").sha256 == artifacts.sha256_file(path)
    assert manifest["kind"] == "export" and manifest["format"] == "onnx"
    if zoo.list(name, pretrained=True):
        assert manifest["provenance"]["weights_sha256"] == checkpoint.manifest.sha256
    assert manifest["input"]["shape"] == [None, *model.input_shape[1:]]
    # Standard ops only: the polynomial layers need no custom op.
    assert set(manifest["ops"]) <= {"Add", "Conv", "MatMul", "Mul", "Reshape", "Softmax",
                                    "Split", "Sub", "Transpose", "Relu", "MaxPool", "Pad",
                                    "Div", "Sqrt", "Gemm", "Squeeze", "Slice", "Concat",
                                    "Flatten", "Unsqueeze", "Identity", "Gather", "Shape",
                                    "Cast", "BatchNormalization", "AveragePool", "Erf", "Neg"}, manifest["ops"]


def test_onnx_refuses_to_overwrite_and_custom_ops(tmp_path):
    model = zoo.build("mnist7_taylor")
    path = str(tmp_path / "m.onnx")
    export(model, path, format="onnx")
    with pytest.raises(FileExistsError, match="already exists"):
        export(model, path, format="onnx")
    import onnx

    from tn_keras.export import onnx as onnx_lib

    proto = onnx.load(path)
    proto.graph.node[0].domain = "com.example"
    with pytest.raises(ValueError, match="custom ops"):
        onnx_lib.check_ops(proto)


@pytest.mark.real_data
def test_onnx_agrees_with_keras_on_real_test_images(real_data_dir, tmp_path):
    from tn_keras import datasets

    model = zoo.load("mnist_taylornet", compile=False)
    path = str(tmp_path / "mnist.onnx")
    export(model, path, format="onnx", model_name="mnist_taylornet")
    x, y = datasets.load("mnist", "test", data_dir=real_data_dir)
    x = x[:1000].astype("float32")
    got = ONNXModel(path).predict(x)
    want = model.predict(x, verbose=0, batch_size=250)
    assert np.max(np.abs(got - want)) <= TFLITE_ATOL
    assert np.mean(got.argmax(-1) == want.argmax(-1)) == 1.0


def test_missing_converter_is_one_clear_line(monkeypatch):
    import builtins

    from tn_keras.export import onnx as onnx_lib

    real_import = builtins.__import__

    def no_tf2onnx(name, *args, **kwargs):
        if name == "tf2onnx":
            raise ImportError("No module named 'tf2onnx'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_tf2onnx)
    with pytest.raises(ValueError, match=r"needs tf2onnx: pip install 'tn_keras\[onnx\]'"):
        onnx_lib.require_converter()
    monkeypatch.undo()
    monkeypatch.setattr(keras.config, "backend", lambda: "jax")
    with pytest.raises(ValueError, match="KERAS_BACKEND=tensorflow"):
        onnx_lib.require_converter()


def test_onnx_uint8_graph_takes_decoded_images_as_they_are(tmp_path):
    """input_dtype="uint8": ONNX Runtime itself takes uint8 pixels (a float graph refuses
    them: an ONNX input has one type), with Keras's outputs on the same images (issue 28)."""
    import onnxruntime

    model = zoo.load("digits_taylornet", compile=False)
    path = str(tmp_path / "digits_u8.onnx")
    manifest = export(model, path, format="onnx", model_name="digits_taylornet",
                      input_dtype="uint8")
    assert manifest["input"]["dtype"] == "uint8"
    x = np.random.default_rng(3).integers(0, 256, (6,) + model.input_shape[1:], np.uint8)
    session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    got = session.run(None, {"image": x})[0]
    expected = np.asarray(model(x.astype("float32"), training=False))
    np.testing.assert_allclose(got, expected, atol=TFLITE_ATOL, rtol=0)
    runtime = ONNXModel(path)
    np.testing.assert_allclose(runtime.predict(x.astype("float64")), got, atol=1e-6)
    with pytest.raises(ValueError, match=r"^x: this ONNX graph takes uint8 pixels"):
        runtime.predict(x.astype("float32") + 0.5)
    with pytest.raises(ValueError, match=r"input_dtype='uint8' applies to format='onnx' only"):
        export(model, str(tmp_path / "d.tflite"), format="tflite", input_dtype="uint8")
    with pytest.raises(ValueError, match=r"input_dtype must be one of float32, uint8"):
        export(model, str(tmp_path / "d.onnx"), format="onnx", input_dtype="int8")
