"""Every TensorFlow-private name tn_keras uses, in one place, each checked by a test.

TensorFlow's public API lacks five things the project needs; each is reached here and nowhere
else, so that a TensorFlow release that moves one breaks one function with one clear message
(and `tests/test_tensorflow_internals.py`, run against the installed version), not four modules:

- reading and undoing op determinism (`tf.config.experimental.enable_op_determinism` has no
  public reader and no inverse): ``tensorflow.python.framework.config``;
- freezing a concrete function's captured variables into constants, what ONNX conversion needs:
  ``tensorflow.python.framework.convert_to_constants.convert_variables_to_constants_v2``;
- the TFLite converter's calibrate-only mode (``_experimental_calibrate_only``) and its MLIR
  quantiser (``tensorflow.lite.python.convert.mlir_quantize``): the two halves of
  ``TFLiteConverter.convert()`` for int8, between which the activation ranges are edited
  (`tn_keras.export.activation_ranges`; TensorFlow's ``QuantizationDebugger`` takes the same
  route);
- reading and writing a flatbuffer as objects: ``tensorflow.lite.tools.flatbuffer_utils``;
- the generated flatbuffer schema, which LiteRT ships publicly and TensorFlow privately (the
  fallback).

Imports are lazy: importing this module imports no TensorFlow.
"""
import importlib

SUPPORTED = "tensorflow-cpu 2.21 (the version the tests run on)"


class TensorFlowInternalMissing(ImportError):
    """A TensorFlow-private name tn_keras relies on is gone from the installed TensorFlow."""


def _attribute(module, name, purpose):
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as error:
        import tensorflow as tf
        raise TensorFlowInternalMissing(
            f"TensorFlow {tf.__version__} has no {module}.{name}, which tn_keras uses for "
            f"{purpose}; tn_keras is tested with {SUPPORTED}.") from error


def op_determinism_enabled() -> bool:
    """Whether TensorFlow's op determinism is on (no public reader exists)."""
    return _attribute("tensorflow.python.framework.config", "is_op_determinism_enabled",
                      "reading the determinism switch")()


def disable_op_determinism():
    """Undo ``tf.config.experimental.enable_op_determinism`` (no public inverse exists)."""
    _attribute("tensorflow.python.framework.config", "disable_op_determinism",
               "restoring the determinism switch")()


def convert_variables_to_constants_v2(concrete_function):
    """A copy of ``concrete_function`` whose captured variables are constants."""
    convert = _attribute("tensorflow.python.framework.convert_to_constants",
                         "convert_variables_to_constants_v2", "freezing a graph for ONNX")
    return convert(concrete_function)


def set_calibrate_only(converter):
    """Make ``converter.convert()`` return the float model with per-tensor min/max recorded,
    instead of quantising it (the first half of int8 conversion)."""
    if not hasattr(converter, "_experimental_calibrate_only"):
        import tensorflow as tf
        raise TensorFlowInternalMissing(
            f"TensorFlow {tf.__version__}'s TFLiteConverter has no _experimental_calibrate_only, "
            f"which tn_keras uses for int8 calibration; tn_keras is tested with {SUPPORTED}.")
    converter._experimental_calibrate_only = True  # pylint: disable=protected-access


def mlir_quantize(calibrated: bytes, input_type, output_type) -> bytes:
    """The full-integer flatbuffer of a calibrated float one (the second half of int8
    conversion), with ``input_type`` / ``output_type`` at the model's edges."""
    quantize = _attribute("tensorflow.lite.python.convert", "mlir_quantize",
                          "int8 quantisation with edited ranges")
    return bytes(quantize(calibrated, False, input_data_type=input_type,
                          output_data_type=output_type))


def flatbuffer_utils():
    """``tensorflow.lite.tools.flatbuffer_utils``: read and write a flatbuffer as objects."""
    try:
        return importlib.import_module("tensorflow.lite.tools.flatbuffer_utils")
    except ImportError as error:
        import tensorflow as tf
        raise TensorFlowInternalMissing(
            f"TensorFlow {tf.__version__} has no tensorflow.lite.tools.flatbuffer_utils, which "
            f"tn_keras uses to edit int8 activation ranges; tn_keras is tested with "
            f"{SUPPORTED}.") from error


def tflite_schema():
    """The generated TFLite flatbuffer schema: LiteRT's public copy, else TensorFlow's."""
    try:
        return importlib.import_module("ai_edge_litert.schema_py_generated")
    except ImportError:  # pragma: no cover - depends on the installed LiteRT
        try:
            return importlib.import_module("tensorflow.lite.python.schema_py_generated")
        except ImportError as error:
            raise TensorFlowInternalMissing(
                "Neither ai_edge_litert nor TensorFlow provides schema_py_generated, the TFLite "
                f"flatbuffer schema; tn_keras is tested with {SUPPORTED} and "
                "ai-edge-litert.") from error


# What the test resolves: every private name above, by (module, attribute).
PRIVATE_NAMES = (
    ("tensorflow.python.framework.config", "is_op_determinism_enabled"),
    ("tensorflow.python.framework.config", "disable_op_determinism"),
    ("tensorflow.python.framework.convert_to_constants", "convert_variables_to_constants_v2"),
    ("tensorflow.lite.python.convert", "mlir_quantize"),
    ("tensorflow.lite.tools.flatbuffer_utils", "read_model_from_bytearray"),
    ("tensorflow.lite.tools.flatbuffer_utils", "convert_object_to_bytearray"),
)
