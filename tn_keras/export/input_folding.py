"""Fold the input's Normalization into the first convolution (for full-integer export).

A zoo model takes raw pixels and starts with a `keras.layers.Normalization`,
``n(x) = (x - m) / s`` per channel. In a full-integer TFLite file every op's output is
requantised. The raw input is exact (integer pixels at scale 1), but ``x - m`` spans 264 values,
more than int8's 256, so it is rounded to a step of 1.03 pixel, and ``(x - m) / s`` is rounded
again: two roundings of every pixel before the first convolution, which sums 27 of them. In
``cifar_convnet_relu`` these ops cost more int8 agreement than any layer: keeping them in float
(everything else int8) raises top-1 agreement from 98.73 % to 99.30 % of 3,000 test images
(``benchmarks/int8_sensitivity.py``).

The fold removes them. For a Conv2D with kernel ``W`` (kh, kw, C, F) and bias ``b`` applied to
``n(x)`` with zero padding:

    conv_W(pad_0(n(x))) + b = conv_W'(pad_m(x)) + b'     ('valid' convolution)
    W'[..., c, f] = W[..., c, f] / s_c ,    b'_f = b_f - sum_{i, j, c} W'[i, j, c, f] m_c

because zero-padding the normalised image is padding the raw image with the mean ``m_c`` of
each channel. ``pad_m(x) = pad_0(x) + B``, with the constant ``B = m_c`` on the border ring and 0
inside (`MeanPadding`): a PAD and an ADD that int8 computes exactly at the input's scale of one
pixel, except that ``m_c`` rounds to a whole pixel on the ring. The convolution then reads the
raw pixels themselves, so its int8 input carries no rounding at all. In float the fold is exact
up to float32 rounding (`export` checks the file against the Keras model).
"""
from typing import List, Tuple

import keras
import numpy as np
from keras import ops

from tn_keras.export import graph

#: Suffix of the padding layer's name; `activation_ranges` keeps its tensors at the input's range.
PADDING_SUFFIX = "_mean_padding"


@keras.saving.register_keras_serializable(package="tn_keras")
class MeanPadding(keras.layers.Layer):
    """Pads an NHWC image with a per-channel constant: ``pad_0(x) + B`` (B: the values on the ring).

    Args:
        padding: ``((top, bottom), (left, right))``.
        values: one padding value per channel.
    """

    def __init__(self, padding, values, **kwargs):
        super().__init__(**kwargs)
        self.padding = tuple(tuple(int(p) for p in pair) for pair in padding)
        self.values = [float(v) for v in values]

    def build(self, input_shape):
        rows, cols, channels = input_shape[1:]
        if rows is None or cols is None:
            raise ValueError(f"MeanPadding needs a known image size; received an input of shape "
                             f"{tuple(input_shape)}.")
        if channels != len(self.values):
            raise ValueError(f"MeanPadding has {len(self.values)} values for an input with "
                             f"{channels} channels (shape {tuple(input_shape)}).")
        (top, bottom), (left, right) = self.padding
        ring = np.ones((1, rows + top + bottom, cols + left + right, 1), np.float32)
        ring[:, top:top + rows, left:left + cols] = 0.0
        self._border = ring * np.asarray(self.values, np.float32)

    def call(self, inputs):
        (top, bottom), (left, right) = self.padding
        padded = ops.pad(inputs, [[0, 0], [top, bottom], [left, right], [0, 0]])
        return ops.add(padded, ops.convert_to_tensor(self._border, dtype=padded.dtype))

    def compute_output_shape(self, input_shape):
        (top, bottom), (left, right) = self.padding
        rows, cols = input_shape[1], input_shape[2]
        return (input_shape[0], None if rows is None else rows + top + bottom,
                None if cols is None else cols + left + right, input_shape[3])

    def get_config(self):
        return dict(super().get_config(), padding=self.padding, values=self.values)


def fold_input_normalization(model: keras.Model) -> Tuple[keras.Model, List[dict]]:
    """A copy of ``model`` whose input Normalization is folded into the Conv2D after it.

    Folded when a per-channel `keras.layers.Normalization` (``axis=-1``, not inverted) reads
    the model input and its output feeds exactly one layer, a channels-last Conv2D
    (``groups=1``, 'same' or 'valid', known input size). Other models come back unchanged.

    Returns:
        ``(model, record)``; ``record`` lists ``{"layer", "normalization", "padding_layer"}``
        per fold (empty when nothing was folded).
    """
    pair = _foldable_pair(model)
    if pair is None:
        return model, []
    normalization, conv, in_shape = pair
    mean, std = _mean_and_std(normalization)
    padding = _explicit_padding(conv, in_shape)
    padding_layer = MeanPadding(padding, mean, name=conv.name + PADDING_SUFFIX)
    folded_conv = {}

    def clone_layer(layer):
        if layer is conv:
            config = dict(layer.get_config(), padding="valid", use_bias=True)
            folded_conv["layer"] = type(layer).from_config(config)
            return folded_conv["layer"]
        return layer

    def call_layer(layer, *args, **kwargs):
        if layer is normalization:
            return args[0]  # the raw pixels go straight to the padding and the convolution
        if layer is folded_conv.get("layer"):
            return layer(padding_layer(args[0]), **kwargs)
        return layer(*args, **kwargs)

    folded = keras.models.clone_model(model, clone_function=clone_layer,
                                      call_function=call_layer)
    kernel = np.asarray(conv.kernel, np.float64) / std[:, None]
    bias = np.asarray(conv.bias, np.float64) if conv.use_bias else np.zeros(kernel.shape[-1])
    bias = bias - np.einsum("ijcf,c->f", kernel, mean)
    folded_conv["layer"].set_weights([kernel.astype(np.float32), bias.astype(np.float32)])
    return folded, [{"layer": conv.name, "normalization": normalization.name,
                     "padding_layer": padding_layer.name}]


def _foldable_pair(model):
    """``(normalization, conv, (rows, cols))``, or None when the model has no foldable pair."""
    model_graph = graph.model_graph(model)
    if model_graph is None or len(model.inputs) != 1:
        return None
    for layer in model.layers:
        if not isinstance(layer, keras.layers.Normalization) or layer.invert:
            continue
        calls, consumers = model_graph.calls(layer.name), model_graph.consumers(layer.name)
        if len(calls) != 1 or len(consumers) != 1 or model_graph.is_output(layer.name):
            continue
        inputs = calls[0].inputs
        if len(inputs) != 1 or inputs[0].layer not in model_graph.input_layers:
            continue  # not applied to the model input itself
        shape = inputs[0].shape  # the Normalization's output has its input's shape
        if len(shape) != 4 or None in shape[1:]:
            continue
        if tuple(np.atleast_1d(layer.axis)) not in ((-1,), (3,)):
            continue  # per-channel statistics only
        conv = model.get_layer(consumers[0].layer)
        if (type(conv) is keras.layers.Conv2D and conv.data_format == "channels_last"
                and conv.groups == 1 and len(model_graph.calls(conv.name)) == 1):
            return layer, conv, shape[1:3]
    return None


def _mean_and_std(normalization) -> Tuple[np.ndarray, np.ndarray]:
    """``(m, s)`` per channel with ``normalization(x) = (x - m) / s`` (Keras's formula)."""
    mean = np.asarray(normalization.mean, np.float64).reshape(-1)
    variance = np.asarray(normalization.variance, np.float64).reshape(-1)
    return mean, np.maximum(np.sqrt(variance), keras.config.epsilon())


def _explicit_padding(conv, in_shape) -> tuple:
    """The zero padding ``((top, bottom), (left, right))`` the Conv2D applies to ``in_shape``."""
    if conv.padding == "valid":
        return ((0, 0), (0, 0))
    pads = []
    for length, k, s, d in zip(in_shape, conv.kernel_size, conv.strides, conv.dilation_rate):
        # TensorFlow's 'same': output ceil(length / s), the extra row/column at the end.
        out = -(-length // s)
        total = max((out - 1) * s + (k - 1) * d + 1 - length, 0)
        pads.append((total // 2, total - total // 2))
    return tuple(pads)
