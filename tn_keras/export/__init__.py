"""Deployment: export tn_keras models to TensorFlow SavedModel, TFLite (LiteRT) and ONNX.

    from tn_keras import zoo
    from tn_keras.export import export, TFLiteModel

    model = zoo.load("digits_taylornet")
    export(model, "digits", format="saved_model", source="digits_taylornet")
    export(model, "digits.tflite", format="tflite", source="digits_taylornet")
    export(model, "digits_int8.tflite", format="tflite_int8", source="digits_taylornet")
    probabilities = TFLiteModel("digits_int8.tflite").predict(raw_images)

Every export is checked against the Keras model right after it is written and gets a manifest
(sha256, input spec, class names, quantisation parameters, versions). TFLite files use builtin
ops only and a batch of one. Before conversion to TFLite, each BatchNormalization is folded
into the polynomial layer before it (`tn_keras.export.folding`) and the input Normalization into
the first Conv2D (`tn_keras.export.input_folding`); int8 activation ranges are quantiles chosen
by the least squared difference from the Keras outputs (`tn_keras.export.activation_ranges`).
``format="tflite_int16x8"`` (int16 activations, int8 weights) is the fallback for deep
polynomial networks that int8 activations cannot represent well enough.
The command line equivalent is ``tn-keras export NAME``.
"""
from tn_keras.export.api import FORMATS
from tn_keras.export.api import export
from tn_keras.export.errors import ParityError
from tn_keras.export.errors import UnsupportedOpsError
from tn_keras.export.manifest import read_manifest
from tn_keras.export.onnx import ONNXModel
from tn_keras.export.runtime import TFLiteModel
from tn_keras.export.tflite import op_names

__all__ = [
    "FORMATS",
    "ONNXModel",
    "ParityError",
    "TFLiteModel",
    "UnsupportedOpsError",
    "export",
    "op_names",
    "read_manifest",
]
