"""SavedModel (known image size, dynamic batch) -> TFLite flatbuffer, with builtin ops only.

Only builtin op sets are allowed (``TFLITE_BUILTINS`` for float, ``TFLITE_BUILTINS_INT8`` for
full-integer, the builtin 16x8 set for int16 activations): a model
that would need Select TF ("Flex") ops would not run on the plain LiteRT runtime of a phone or
micro-controller, so conversion fails with `UnsupportedOpsError` naming the TensorFlow ops
instead of silently producing a file that needs the large Flex delegate.

The route is ``TFLiteConverter.from_saved_model``; ``from_concrete_functions`` is avoided on
purpose: with Keras 3 models it can lose the variables captured by the traced function (the
converted file then carries no weights).

Full-integer quantisation (``mode="int8"``): weights and activations are int8, calibrated on a
representative set of raw training images, and the model's input and output tensors are int8
too (what integer-only accelerators and micro-controllers need). The input is calibrated on
0..255 pixels, which gives scale 1 and zero-point -128 (every integer pixel is represented
exactly); TFLite fixes the softmax output at scale 1/256 and zero-point -128, so probabilities
keep a 1/256 resolution. That costs nothing measurable in top-1 for the shallow zoo models
(digits, mnist7x7: >= 99.6 % agreement; a briefly trained mnist_taylornet: 99.7 %), so int8 I/O
was kept rather than float I/O. Deep polynomial networks are another matter: a product adds the
relative errors of its two factors, so rounding errors compound with depth, and a briefly
trained cifar_taylornet (2 epochs on 10k images, 36-46 % accurate) keeps only ~13 % top-1
agreement in int8 although each op's own error is the normal rounding level. The cause is the
range of the activations: each product makes them heavy-tailed (max / std of 20 to 30 after
the CG layers), min/max calibration sets the int8 step from the max, the step grows to 0.2-0.5
std, and the relative error of the activations grows 2.5 % -> 14 % -> 37 % along the network
until the logits' step (4.3) exceeds their std (3.7). Two remedies, both used by
`tn_keras.export.export`: `calibrate_int8` sets the activation ranges from quantiles instead of
the max (`tn_keras.export.activation_ranges`), and ``mode="int16x8"`` (int16 activations, int8
weights, float I/O) gives 256x finer steps (96.8 % agreement on that model).
`TFLiteModel` quantises inputs and dequantises outputs, so callers see float images in and float
probabilities out for every mode.
"""
import re
from typing import List, Optional

import numpy as np
import tensorflow as tf

from tn_keras.export import activation_ranges
from tn_keras.export.errors import UnsupportedOpsError
from tn_keras.utils import tensorflow_internals


#: Quantisation modes of `convert_saved_model`.
MODES = ("float", "int8", "int16x8")


def convert_saved_model(
    saved_model_dir: str,
    mode: str = "float",
    representative_data: Optional[np.ndarray] = None,
) -> bytes:
    """Convert a SavedModel to TFLite bytes (builtin ops only).

    Args:
        saved_model_dir: written by `tn_keras.export.saved_model.write_saved_model` with
            ``static_image=True`` (a dynamic batch is kept: ``shape_signature`` ``(-1, H, W, C)``).
        mode: ``"float"``; ``"int8"``: full-integer quantisation with int8 input and output,
            TFLite's min/max activation ranges (see `calibrate_int8` for quantile ranges);
            ``"int16x8"``: int16 activations and int8 weights (TFLite's experimental 16x8
            mode, builtin ops, float input and output), 256x finer activation steps for deep
            polynomial networks whose products amplify int8 rounding (cifar_taylornet).
        representative_data: float32 images ``(N, H, W, C)``, raw 0..255, for calibration
            (required unless ``mode="float"``).

    Raises:
        UnsupportedOpsError: the model needs TensorFlow ops TFLite has no builtin kernel for.
    """
    converter = _converter(saved_model_dir, mode, representative_data)
    return check_builtin_ops(_convert(converter, mode))


def calibrate_int8(saved_model_dir: str, representative_data: np.ndarray,
                   quantiles=activation_ranges.CANDIDATE_QUANTILES, pixel_tensors=()
                   ) -> activation_ranges.ActivationRanges:
    """Calibrate for full-integer quantisation, keeping the activation quantiles.

    ``calibrate_int8(...).quantise(q, tf.int8, tf.int8)`` is the int8 file with activation ranges
    at quantile ``q`` (``q = 1``: what ``convert_saved_model(mode="int8")`` gives); pass it
    through `check_builtin_ops`. ``pixel_tensors``: see `activation_ranges.ActivationRanges`.
    """
    converter = _converter(saved_model_dir, "int8", representative_data)
    tensorflow_internals.set_calibrate_only(converter)
    calibrated = _convert(converter, "int8")
    return activation_ranges.ActivationRanges(
        calibrated, np.asarray(representative_data, np.float32), quantiles, pixel_tensors)


def _converter(saved_model_dir, mode, representative_data):
    if mode not in MODES:
        raise ValueError(f"Unknown TFLite mode {mode!r}; valid: {', '.join(MODES)}.")
    converter = tf.lite.TFLiteConverter.from_saved_model(saved_model_dir)
    if mode == "float":
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        return converter
    if representative_data is None or len(representative_data) == 0:
        raise ValueError(f"{mode} quantisation needs representative_data (calibration "
                         "images).")
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    # The calibration images go in one by one (a batch of one per representative sample).
    converter.representative_dataset = activation_ranges.calibration_generator(
        representative_data)
    if mode == "int8":
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
    else:
        converter.target_spec.supported_ops = [
            tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8]
    return converter


def _convert(converter, mode) -> bytes:
    try:
        return bytes(converter.convert())
    except Exception as e:  # ConverterError has no stable import path across TF versions
        ops = unsupported_ops_from_message(str(e))
        if ops:
            raise UnsupportedOpsError(
                f"TFLite conversion needs TensorFlow ops that have no builtin TFLite kernel"
                f"{'' if mode == 'float' else ' for ' + mode}: {', '.join(ops)}. tn_keras "
                "exports builtin ops only (no Select TF / Flex ops); replace the layer that uses "
                f"{'it' if len(ops) == 1 else 'them'}, or export format='saved_model'.",
                ops,
            ) from e
        raise


def check_builtin_ops(flatbuffer: bytes) -> bytes:
    """``flatbuffer`` itself, if it declares builtin ops only; UnsupportedOpsError otherwise."""
    custom = [name for name in op_names(flatbuffer) if name.startswith("CUSTOM:")]
    if custom:
        # Should not happen with builtins-only conversion, but a Flex/custom op in the file
        # would make it unloadable by a plain LiteRT runtime: refuse it.
        names = [name.split(":", 1)[1] for name in custom]
        raise UnsupportedOpsError(
            f"The converted TFLite model contains non-builtin ops: {', '.join(names)}.", names
        )
    return bytes(flatbuffer)


# "'tf.Erfinv' op is neither a custom op nor a flex op" and "Custom ops: Erfinv, Foo" / "Flex
# ops: ..." are how the MLIR converter names what it could not lower.
_NEITHER = re.compile(r"'tf\.(\w+)' op is neither a custom op nor a flex op")
_LISTED = re.compile(r"^\s*(?:Custom|Flex) ops:\s*(.+)$", re.MULTILINE)


def unsupported_ops_from_message(message: str) -> List[str]:
    """The TensorFlow op names a converter error message says it could not convert."""
    ops = set(_NEITHER.findall(message))
    for line in _LISTED.findall(message):
        ops.update(name.strip() for name in line.split(",") if name.strip())
    return sorted(ops)


def op_names(flatbuffer: bytes) -> List[str]:
    """The operator names a TFLite file declares, read from its flatbuffer (not the runtime).

    Builtin ops come back by name (``"CONV_2D"``); custom and Flex ops as ``"CUSTOM:<code>"``
    (Flex ops have codes like ``"FlexErfinv"``). Reading the file rather than asking an
    interpreter avoids the ``DELEGATE`` nodes XNNPACK substitutes at run time.
    """
    schema = tensorflow_internals.tflite_schema()
    names = {
        value: key
        for key, value in vars(schema.BuiltinOperator).items()
        if not key.startswith("_") and isinstance(value, int)
    }
    model = schema.Model.GetRootAs(bytearray(flatbuffer), 0)
    result = []
    for i in range(model.OperatorCodesLength()):
        code = model.OperatorCodes(i)
        # deprecated_builtin_code is an int8 kept for old readers; builtin_code holds the
        # real value for codes >= 127: the larger of the two is the op.
        builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
        if builtin == schema.BuiltinOperator.CUSTOM:
            custom = code.CustomCode()
            result.append("CUSTOM:" + (custom.decode() if custom else "?"))
        else:
            result.append(names.get(builtin, f"BUILTIN_{builtin}"))
    return sorted(set(result))
