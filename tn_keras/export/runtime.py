"""`TFLiteModel`: run an exported ``.tflite`` file like the Keras model it came from.

It uses the LiteRT interpreter (``ai_edge_litert``), the runtime a deployment would use, not
``tf.lite.Interpreter`` (deprecated, and not what ships on devices).
"""
import os
from typing import Optional, Union

import numpy as np

from tn_keras.export.signature import as_image_batch
from tn_keras.utils import native_stderr


class TFLiteModel:
    """A TFLite classifier that takes the same raw images as the Keras model.

    Example::

        from tn_keras.export import TFLiteModel
        tfl = TFLiteModel("digits.tflite")
        probabilities = tfl.predict(images)    # (N, 8, 8, 1) raw 0..255 -> (N, 10)

    Files exported by tn_keras have a dynamic batch (input signature ``(-1, H, W, C)``):
    ``predict`` resizes the input to ``batch_size`` images and runs them together. Files with
    a static batch (older exports, or other converters) run one image at a time.
    Full-integer (int8) files get their input quantised with the input tensor's scale and
    zero-point and their output dequantised, so the result is float32 probabilities for both
    float and int8 files.

    Args:
        model: path of a ``.tflite`` file, or its bytes.
        num_threads: interpreter threads (None: LiteRT's default).
    """

    def __init__(self, model: Union[str, os.PathLike, bytes], num_threads: Optional[int] = None):
        from ai_edge_litert.interpreter import Interpreter

        if isinstance(model, (bytes, bytearray)):
            self.path = None
            self._interpreter = Interpreter(model_content=bytes(model), num_threads=num_threads)
        else:
            self.path = os.fspath(model)
            if not os.path.isfile(self.path):
                raise FileNotFoundError(f"No TFLite file at {self.path}.")
            self._interpreter = Interpreter(model_path=self.path, num_threads=num_threads)
        with native_stderr.without_lines():  # LiteRT's XNNPACK notice, not a warning
            self._interpreter.allocate_tensors()
        inputs = self._interpreter.get_input_details()
        outputs = self._interpreter.get_output_details()
        if len(inputs) != 1 or len(outputs) != 1:
            raise ValueError(
                f"Expected a TFLite model with one input and one output; this one has "
                f"{len(inputs)} inputs and {len(outputs)} outputs."
            )
        self._input, self._output = inputs[0], outputs[0]

    @property
    def input_shape(self) -> tuple:
        """``(None, H, W, C)`` for a file with a dynamic batch, else ``(1, H, W, C)``."""
        return (None if self.dynamic_batch else 1,) + tuple(
            int(d) for d in self._input["shape"][1:])

    @property
    def dynamic_batch(self) -> bool:
        """True when the input's batch may be resized (its signature's batch is -1)."""
        signature = self._input.get("shape_signature")
        return signature is not None and len(signature) > 0 and int(signature[0]) == -1

    @property
    def output_shape(self) -> tuple:
        """``(None, classes)`` for a file with a dynamic batch, else ``(1, classes)``."""
        return (None if self.dynamic_batch else 1,) + tuple(
            int(d) for d in self._output["shape"][1:])

    @property
    def input_dtype(self) -> np.dtype:
        return np.dtype(self._input["dtype"])

    @property
    def output_dtype(self) -> np.dtype:
        return np.dtype(self._output["dtype"])

    @property
    def quantized(self) -> bool:
        """True for full-integer files (integer input tensor)."""
        return np.issubdtype(self.input_dtype, np.integer)

    @property
    def input_quantization(self) -> tuple:
        """``(scale, zero_point)`` of the input tensor; ``(0.0, 0)`` for float tensors."""
        scale, zero_point = self._input["quantization"]
        return float(scale), int(zero_point)

    @property
    def output_quantization(self) -> tuple:
        scale, zero_point = self._output["quantization"]
        return float(scale), int(zero_point)

    def _quantize(self, image: np.ndarray) -> np.ndarray:
        if not self.quantized:
            return image
        scale, zero_point = self.input_quantization
        info = np.iinfo(self.input_dtype)
        q = np.round(image / scale) + zero_point
        return np.clip(q, info.min, info.max).astype(self.input_dtype)

    def _dequantize(self, y: np.ndarray) -> np.ndarray:
        if not np.issubdtype(y.dtype, np.integer):
            return y.astype(np.float32, copy=False)
        scale, zero_point = self.output_quantization
        return ((y.astype(np.float32) - zero_point) * scale).astype(np.float32)

    def predict_one(self, image: np.ndarray) -> np.ndarray:
        """One float32 image ``(1, H, W, C)`` (raw pixels) -> float32 output ``(1, classes)``."""
        return self._run(image)

    def _run(self, images: np.ndarray) -> np.ndarray:
        """Run a float32 batch through the interpreter, resizing its input to the batch."""
        if int(self._input["shape"][0]) != len(images):
            self._interpreter.resize_tensor_input(
                self._input["index"], [len(images), *self._input["shape"][1:]])
            with native_stderr.without_lines():
                self._interpreter.allocate_tensors()
            # Resizing replaces the details (the shapes, not the tensor indices).
            self._input = self._interpreter.get_input_details()[0]
            self._output = self._interpreter.get_output_details()[0]
        self._interpreter.set_tensor(self._input["index"], self._quantize(images))
        self._interpreter.invoke()
        return self._dequantize(self._interpreter.get_tensor(self._output["index"]))

    def predict(self, x, batch_size: int = 256, verbose=None) -> np.ndarray:
        """Outputs (float32, ``(N, classes)``) for a batch of raw images ``(N, H, W, C)``.

        ``x`` may be uint8 or float, of any length. ``batch_size``: images per interpreter
        call for a file with a dynamic batch (one at a time otherwise). ``verbose`` is
        accepted and ignored, so code written for ``keras.Model.predict`` runs unchanged.
        """
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int; received {batch_size!r}.")
        x = as_image_batch(x, self.input_shape[1:], allow_empty=True)
        step = batch_size if self.dynamic_batch else 1
        out = np.empty((len(x),) + self.output_shape[1:], np.float32)
        for start in range(0, len(x), step):
            out[start:start + step] = self._run(x[start:start + step])
        return out

    __call__ = predict

    def __repr__(self):
        kind = "int8" if self.quantized else "float"
        return f"TFLiteModel({self.path or '<bytes>'!r}, {kind}, input={self.input_shape})"
