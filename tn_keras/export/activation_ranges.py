"""int8 activation ranges from quantiles instead of the min and max (for full-integer TFLite).

TFLite's converter gives every activation tensor the range ``[min, max]`` seen on the
calibration images, and int8 spreads 256 levels over it. The products of a polynomial network
make its activations heavy-tailed: in the trained cifar_taylornet the largest value of a layer
output is 40 to 70 standard deviations, so the int8 step is half a standard deviation, the
rounding error of each layer is ~15 % of its signal, and the products compound it from layer to
layer (the network's top-1 then agrees with the float model on only ~10-20 % of images).

Here the range of every activation tensor is instead ``[quantile(1 - q), quantile(q)]`` of its
values on the calibration images (widened to include 0, as TFLite requires). Values beyond it
saturate: TFLite's int8 kernels clamp every output to its tensor's range, so a tighter range is
exactly "clip the rare outliers, round everything else finely". Clipping a tensor alone with the
least squared error would hardly clip (a per-tensor MSE criterion picks q ~ 0.99999 here), but
the network as a whole prefers much more clipping (q ~ 0.999) because rounding noise in the
bulk is multiplied by the layers after it. So ``q`` is chosen end to end: each candidate is
quantised and the one whose outputs are closest to the float model's on the calibration images
(least mean squared difference of the output vectors) wins (`search_quantile`). ``q = 1`` is
TFLite's own min/max calibration.

Why the squared difference and not top-1 agreement, the figure the tests hold the export to:
on 500 calibration images neighbouring quantiles differ in agreement by one or two images, so
choosing by agreement chose by chance. Over the seven shipped checkpoints (5,000 test images
each, or all 360 digits; ``benchmarks/int8_activation_ranges.py --test-images 5000``, which
records both figures per quantile) the squared difference chose the quantile with the best test
agreement for five, agreement on the calibration images for three (both for
``fashion_taylornet``); ``cifar_convnet_relu`` went from 98.94 to 99.20 %, ``cifar_taylornet``
from 95.20 to 94.84 %.

The steps use the converter's calibrate-only mode and its MLIR quantiser
(``TFLiteConverter._experimental_calibrate_only`` and ``tensorflow.lite.python.convert.
mlir_quantize``): the same two calls ``TFLiteConverter.convert()`` makes for int8, with the
ranges edited in between (TensorFlow's ``QuantizationDebugger`` uses the same route).
"""
import warnings
from typing import Callable, Dict, Iterable, Optional, Sequence, Tuple

import numpy as np

from tn_keras.utils import native_stderr
from tn_keras.utils import tensorflow_internals

#: Quantiles tried by `search_quantile`, least clipping first (ties keep the least clipping).
CANDIDATE_QUANTILES = (1.0, 0.99999, 0.9999, 0.9995, 0.999, 0.9985, 0.998, 0.995)
# Values kept per tensor and image to estimate its quantiles: a fixed-seed sample, so that the
# memory is bounded (a CIFAR layer has up to 65k values per image) and the file reproducible.
_SAMPLES_PER_IMAGE = 4096


class ActivationRanges:
    """A calibrated float TFLite model and its activation quantiles, ready to quantise.

    Args:
        calibrated: the flatbuffer of ``TFLiteConverter.convert()`` with
            ``_experimental_calibrate_only = True`` (float ops, min/max recorded per tensor).
        images: the calibration images (float32, batch of single images) it was calibrated on.
        quantiles: the ``q`` values to prepare.
        pixel_tensors: name fragments of tensors that hold raw pixels (the padding of
            `tn_keras.export.input_folding`): they keep the model input's range at every ``q``,
            so that int8 represents them as exactly as the input (integer pixels at scale 1).
    """

    def __init__(self, calibrated: bytes, images: np.ndarray,
                 quantiles: Sequence[float] = CANDIDATE_QUANTILES,
                 pixel_tensors: Sequence[str] = ()):
        flatbuffer_utils = tensorflow_internals.flatbuffer_utils()
        for q in quantiles:
            if not 0.5 < q <= 1.0:
                raise ValueError(f"Activation quantiles must be in (0.5, 1]; received {q}.")
        self.calibrated = bytes(calibrated)
        self.quantiles = tuple(float(q) for q in quantiles)
        model = flatbuffer_utils.read_model_from_bytearray(bytearray(self.calibrated))
        subgraph = model.subgraphs[0]
        inputs = set(subgraph.inputs)
        # The activation tensors the calibrator measured; the model input keeps its exact
        # 0..255 range (integer pixels at scale 1).
        self._tensors = [
            i for i, tensor in enumerate(subgraph.tensors)
            if i not in inputs and tensor.quantization is not None
            and tensor.quantization.min is not None and len(tensor.quantization.min) == 1
        ]
        # q = 1 keeps the calibrator's own record, so that it is exactly TFLite's int8.
        recorded = {i: (float(subgraph.tensors[i].quantization.min[0]),
                        float(subgraph.tensors[i].quantization.max[0])) for i in self._tensors}
        self._bounds = self._quantile_bounds(
            np.asarray(images, np.float32), [q for q in self.quantiles if q < 1.0])
        if 1.0 in self.quantiles:
            self._bounds[1.0] = recorded
        (input_index,) = inputs
        pixels = subgraph.tensors[input_index].quantization
        for i in self._tensors:
            name = subgraph.tensors[i].name.decode()
            if any(fragment in name for fragment in pixel_tensors):
                for bounds in self._bounds.values():
                    bounds[i] = (float(pixels.min[0]), float(pixels.max[0]))

    def _quantile_bounds(self, images, quantiles) -> Dict[float, Dict[int, Tuple[float, float]]]:
        from ai_edge_litert.interpreter import Interpreter

        if not quantiles:
            return {}
        with warnings.catch_warnings():
            # Keeping every intermediate tensor is the point here, not a debugging leftover.
            warnings.filterwarnings("ignore", message=".*experimental_preserve_all_tensors")
            interpreter = Interpreter(model_content=self.calibrated,
                                      experimental_preserve_all_tensors=True)
        with native_stderr.without_lines():  # LiteRT's XNNPACK notice, not a warning
            interpreter.allocate_tensors()
        input_index = interpreter.get_input_details()[0]["index"]
        rng = np.random.default_rng(0)
        samples = {i: [] for i in self._tensors}
        for k in range(len(images)):
            interpreter.set_tensor(input_index, images[k:k + 1])
            interpreter.invoke()
            for i in self._tensors:
                values = interpreter.get_tensor(i).ravel()
                if values.size > _SAMPLES_PER_IMAGE:
                    values = values[rng.choice(values.size, _SAMPLES_PER_IMAGE, replace=False)]
                samples[i].append(values.astype(np.float32, copy=True))
        bounds = {q: {} for q in quantiles}
        for i, parts in samples.items():
            values = np.concatenate(parts)
            for q in quantiles:
                low, high = np.quantile(values, [1.0 - q, q])
                bounds[q][i] = (float(min(low, 0.0)), float(max(high, 0.0)))
        return bounds

    def quantise(self, quantile: float, input_type, output_type) -> bytes:
        """The full-integer flatbuffer with every activation range set at ``quantile``."""
        return tensorflow_internals.mlir_quantize(self.calibrated_at(quantile), input_type,
                                                  output_type)

    def calibrated_at(self, quantile: float) -> bytes:
        """The calibrated float flatbuffer with every recorded range set at ``quantile``."""
        flatbuffer_utils = tensorflow_internals.flatbuffer_utils()
        if quantile not in self._bounds:
            raise ValueError(f"quantile {quantile} was not prepared; prepared: "
                             f"{', '.join(map(str, self.quantiles))}.")
        model = flatbuffer_utils.read_model_from_bytearray(bytearray(self.calibrated))
        tensors = model.subgraphs[0].tensors
        for i, (low, high) in self._bounds[quantile].items():
            tensors[i].quantization.min = [low]
            tensors[i].quantization.max = [high]
        return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def search_quantile(
    ranges: ActivationRanges,
    evaluate: Callable[[bytes], Dict[str, float]],
    input_type,
    output_type,
    criterion: str = "mean_squared_error",
) -> Tuple[float, bytes, Dict[str, Dict[str, float]]]:
    """Quantise at every prepared quantile; keep the one with the least ``criterion``.

    Args:
        evaluate: maps a quantised flatbuffer to figures of how far it is from the float model
            (e.g. ``{"mean_squared_error": ..., "top1_agreement": ...}``); all are recorded.
        criterion: the key of ``evaluate``'s result to minimise.

    Returns:
        ``(quantile, flatbuffer, {str(quantile): figures})``. Ties go to the larger quantile
        (less clipping), which comes first in ``ranges.quantiles``.
    """
    best: Optional[Tuple[float, float, bytes]] = None
    table = {}
    for q in ranges.quantiles:
        flatbuffer = ranges.quantise(q, input_type, output_type)
        figures = {key: float(value) for key, value in evaluate(flatbuffer).items()}
        if criterion not in figures:
            raise KeyError(f"evaluate() returned {sorted(figures)}, not the criterion "
                           f"{criterion!r}.")
        table[str(q)] = figures
        if best is None or figures[criterion] < best[0]:
            best = (figures[criterion], q, flatbuffer)
    return best[1], best[2], table


def calibration_generator(images: np.ndarray) -> Callable[[], Iterable]:
    """A representative-dataset function feeding ``images`` one at a time (batch-1 models)."""
    images = np.asarray(images, np.float32)

    def representative_dataset():
        for i in range(len(images)):
            yield [images[i:i + 1]]

    return representative_dataset
