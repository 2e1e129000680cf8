"""ONNX export: the Keras model as a standard ONNX graph, checked with ONNX Runtime.

Converter: tf2onnx, the converter Keras itself uses for ``model.export(format="onnx")`` under
TensorFlow (maintained under the ONNX organisation). Keras's own call cannot be used as is: the
zoo's input ``Normalization`` layer holds its mean and variance as constant tensors, which
tf2onnx's ``from_function`` leaves as *graph inputs* (the exported graph then asks for
``.../Normalization/Sub/y:0``). So the model's inference function is traced here, every
variable and captured constant is frozen into the graph, and the frozen GraphDef is converted.

The polynomial layers need no custom op: PolyCG / DilatedPolyCG are one convolution followed by
element-wise products and sums, TaylorDense is MatMul, Mul and Add (the GELU baseline's ``Erfc``
is rewritten as ``1 - Erf``, `STANDARD_REWRITES`); `check_ops` refuses any op
outside the standard ONNX domain, so a graph that needs one can never be written silently.

Input ``image`` (NHWC raw pixels 0..255, dynamic batch; float32, or uint8 with
``input_dtype="uint8"``, the graph then casting to float32 first), output ``predictions``.
"""
import os

import numpy as np

from tn_keras.export.errors import ParityError
from tn_keras.export.parity import max_abs_difference
from tn_keras.export.signature import VALUE_RANGE
from tn_keras.utils import tensorflow_internals
from tn_keras.utils.files import atomic_path

OPSET = 17
INPUT_NAME = "image"
OUTPUT_NAME = "predictions"
STANDARD_DOMAINS = ("", "ai.onnx")


#: ONNX Runtime's name of an input type -> the NumPy dtype it takes.
ORT_TYPES = {"tensor(float)": np.float32, "tensor(uint8)": np.uint8}


class ONNXModel:
    """An ONNX file (or its bytes) run with ONNX Runtime on the CPU: ``predict(x)``, ``x`` of
    any numeric dtype (cast to the graph's input type; for a uint8 graph, only whole values
    in 0..255)."""

    def __init__(self, model):
        import onnxruntime

        source = model if isinstance(model, (bytes, bytearray)) else os.fspath(model)
        self.session = onnxruntime.InferenceSession(source,
                                                    providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name
        self.input_shape = list(self.session.get_inputs()[0].shape)
        self.input_dtype = np.dtype(ORT_TYPES[self.session.get_inputs()[0].type])
        self.output_shape = list(self.session.get_outputs()[0].shape)

    def predict(self, x, batch_size=None, verbose=None):
        """Outputs for a batch ``x``; ``batch_size`` (images per run, default all at once) and
        ``verbose`` (ignored) let code written for ``keras.Model.predict`` run unchanged."""
        x = np.asarray(x)
        if batch_size is not None and len(x) > batch_size:
            return np.concatenate([self.predict(x[start:start + batch_size])
                                   for start in range(0, len(x), batch_size)])
        if self.input_dtype == np.uint8 and x.dtype != np.uint8:
            # Rounding would change the image silently: a uint8 graph takes pixels as stored.
            if not (np.all(np.isfinite(x)) and np.all(x == np.round(x))
                    and x.min(initial=0) >= 0 and x.max(initial=0) <= 255):
                raise ValueError("x: this ONNX graph takes uint8 pixels (input_dtype='uint8'); "
                                 "received values that are not whole numbers in 0..255.")
        return self.session.run(None, {self.input_name: x.astype(self.input_dtype)})[0]


def require_converter():
    """Refuse, in one line, what cannot convert: another Keras backend, or no tf2onnx."""
    import keras

    if keras.config.backend() != "tensorflow":
        raise ValueError(f"format='onnx' converts through TensorFlow, but the Keras backend is "
                         f"{keras.config.backend()!r}: run the export with "
                         "KERAS_BACKEND=tensorflow (the .keras checkpoints load under any "
                         "backend).")
    for module in ("tf2onnx", "onnx", "onnxruntime"):
        try:
            __import__(module)
        except ImportError:
            raise ValueError(f"format='onnx' needs {module}: pip install 'tn_keras[onnx]'."
                             ) from None


def convert(model, image_shape, opset=OPSET, input_dtype="float32") -> bytes:
    """The serialised ONNX model of a single-input Keras image classifier (TensorFlow);
    ``input_dtype`` "uint8" gives a graph that takes uint8 pixels and casts them first."""
    require_converter()
    import tensorflow as tf
    import tf2onnx

    spec = tf.TensorSpec((None, *image_shape), tf.as_dtype(input_dtype), name=INPUT_NAME)
    function = tf.function(lambda image: model(tf.cast(image, tf.float32), training=False))
    # Freezing captured constants (see the module docstring) has no public TF 2 API.
    frozen = tensorflow_internals.convert_variables_to_constants_v2(function.get_concrete_function(spec))
    inputs = [t.name for t in frozen.inputs]
    outputs = [t.name for t in frozen.outputs]
    proto, _ = tf2onnx.convert.from_graph_def(frozen.graph.as_graph_def(), input_names=inputs,
                                              output_names=outputs, opset=opset,
                                              custom_op_handlers=STANDARD_REWRITES)
    _rename(proto.graph, inputs[0], INPUT_NAME)
    _rename(proto.graph, outputs[0], OUTPUT_NAME)
    check_ops(proto)
    return proto.SerializeToString()


def _erfc_as_erf(ctx, node, name, args):
    """TensorFlow's exact GELU is ``x/2 * erfc(-x/sqrt 2)``, and tf2onnx has no ``Erfc``:
    rewrite it as ``1 - Erf(x)``, both standard ONNX ops (exact, not an approximation)."""
    from tf2onnx import utils

    x = node.input[0]
    erf = ctx.make_node("Erf", [x], op_name_scope=node.name)
    one = ctx.make_const(utils.make_name(node.name + "_one"),
                         np.array(1, dtype=utils.map_onnx_to_numpy_type(ctx.get_dtype(x))))
    node.type = "Sub"
    ctx.replace_inputs(node, [one.output[0], erf.output[0]])


#: TensorFlow ops tf2onnx cannot convert, written here in standard ONNX ops instead.
STANDARD_REWRITES = {"Erfc": (_erfc_as_erf, [])}


def _rename(graph, old, new):
    """Give a graph input or output a plain name (tf2onnx keeps TensorFlow's ``:0``)."""
    for value in list(graph.input) + list(graph.output):
        if value.name == old:
            value.name = new
    for node in graph.node:
        node.input[:] = [new if name == old else name for name in node.input]
        node.output[:] = [new if name == old else name for name in node.output]


def check_ops(proto) -> list:
    """The sorted op types of an ONNX model; a custom-domain op is an error naming it."""
    custom = sorted({f"{n.domain}:{n.op_type}" for n in proto.graph.node
                     if n.domain not in STANDARD_DOMAINS})
    if custom:
        raise ValueError(f"The ONNX graph needs custom ops {custom}; refusing to write it.")
    return sorted({n.op_type for n in proto.graph.node})


def export_onnx(model, path, image_shape, overwrite, parity_inputs, atol, output_spec,
                input_dtype="float32"):
    """Write ``path`` (atomically) after checking it against Keras; the manifest's record.

    ``parity_inputs``: images to compare on (None: no check; rounded to whole grey levels for
    a uint8 graph); ``atol``: the largest absolute difference allowed (the float TFLite
    format's tolerance); ``input_dtype``: the graph's input type ("float32" or "uint8").
    """
    import hashlib

    import onnx

    flatbuffer = convert(model, image_shape, input_dtype=input_dtype)
    runtime = ONNXModel(flatbuffer)
    parity = None
    if parity_inputs is not None:
        if input_dtype == "uint8":
            parity_inputs = np.round(np.asarray(parity_inputs, np.float32))
        got = runtime.predict(parity_inputs)
        diff = max_abs_difference(got, np.asarray(model(parity_inputs, training=False)))
        if not diff <= atol:
            raise ParityError(f"The ONNX model's outputs differ from the Keras model's by "
                              f"{diff:.3g} (tolerance {atol}); not written.")
        parity = {"images": int(len(parity_inputs)), "inputs": "uniform random 0..255, seed 0",
                  "max_abs_diff": diff, "atol": atol, "runtime": "onnxruntime (CPU)"}
    with atomic_path(path, overwrite=overwrite) as tmp:
        with open(tmp, "wb") as f:
            f.write(flatbuffer)
    return dict(
        file=os.path.basename(path),
        sha256=hashlib.sha256(flatbuffer).hexdigest(),
        size_bytes=len(flatbuffer),
        input_spec={"name": INPUT_NAME, "shape": [None, *image_shape], "dtype": input_dtype,
                    "layout": "NHWC", "value_range": VALUE_RANGE},
        output_spec=dict(output_spec, name=OUTPUT_NAME),
        quantization=None,
        ops=check_ops(onnx.load_from_string(flatbuffer)),
        parity=parity,
        graph_transforms=[{"transform": "frozen: variables and captured constants inlined",
                           "converter": "tf2onnx", "opset": OPSET}],
    )
