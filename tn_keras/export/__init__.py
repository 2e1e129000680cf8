"""Deployment: export tn_keras models to TensorFlow SavedModel, TFLite (LiteRT) and ONNX.

    from tn_keras import zoo
    from tn_keras.export import ExportConfig, TFLiteModel, export

    model = zoo.load("digits_taylornet")
    int8 = ExportConfig(format="tflite_int8", model_name="digits_taylornet")
    export(model, "digits_int8.tflite", int8)
    export(model, "digits", format="saved_model", model_name="digits_taylornet")
    probabilities = TFLiteModel("digits_int8.tflite").predict(raw_images)

Every export is checked against the Keras model right after it is written and gets a manifest
(sha256, input spec, class names, quantisation parameters, versions). TFLite files use builtin
ops only and a dynamic batch (``TFLiteModel.predict`` runs batches of 256). Before conversion
to TFLite, each BatchNormalization is folded into the polynomial layer before it
(`tn_keras.export.folding`) and the input Normalization into the first Conv2D
(`tn_keras.export.input_folding`); int8 activation ranges are quantiles chosen
by the least squared difference from the Keras outputs (`tn_keras.export.activation_ranges`).
``format="tflite_int16x8"`` (int16 activations, int8 weights) is the fallback for deep
polynomial networks that int8 activations cannot represent well enough.
The command line equivalent is ``tn-keras export NAME``.

The formats are records in one registry (`tn_keras.export.formats`): `register_format` adds
one (docs/deployment.md, "Adding an export format"), and ``FORMATS`` is the tuple of their names.

The package loads its parts on first use: ``FORMATS``, `ExportConfig` and the registry come
without Keras or TensorFlow (the CLI's ``--help`` lists the formats without importing them).
"""
import importlib

from tn_keras.export import config as _config
from tn_keras.export.config import ExportConfig
from tn_keras.export.formats import ExportFormat
from tn_keras.export.formats import get_format
from tn_keras.export.formats import register_format
from tn_keras.export.formats import unregister_format

# name -> the module that defines it; loaded on first use (most of them import TensorFlow).
_LAZY = {
    "export": "api",
    "ParityError": "errors",
    "UnsupportedOpsError": "errors",
    "read_manifest": "manifest",
    "ONNXModel": "onnx",
    "SavedModelRuntime": "saved_model",
    "TFLiteModel": "runtime",
    "op_names": "tflite",
}


def __getattr__(name):
    if name == "FORMATS":  # the registry's names now (`config.FORMATS`), never a stale copy
        return _config.FORMATS
    if name not in _LAZY:
        raise AttributeError(f"module 'tn_keras.export' has no attribute {name!r}")
    try:
        module = importlib.import_module(f"tn_keras.export.{_LAZY[name]}")
    except ImportError as e:
        if "tensorflow" not in str(e):
            raise
        raise ModuleNotFoundError(
            f"tn_keras.export.{name} needs TensorFlow (SavedModel and TFLite are TensorFlow "
            "formats), which is not installed: pip install 'tn_keras[cpu]'. Everything else in "
            f"tn_keras runs without it under KERAS_BACKEND=jax or torch. ({e})",
            name="tensorflow") from e
    value = getattr(module, name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY) | {"FORMATS"})


__all__ = [
    "FORMATS",
    "ExportConfig",
    "ExportFormat",
    "ONNXModel",
    "ParityError",
    "SavedModelRuntime",
    "TFLiteModel",
    "UnsupportedOpsError",
    "export",
    "get_format",
    "op_names",
    "read_manifest",
    "register_format",
    "unregister_format",
]
