"""PolyCG: a patch coarse-grained into one site by a local Taylor expansion."""
import math

import numpy as np
from keras import config as keras_config
from keras import layers
from keras import ops
from keras.saving import register_keras_serializable

from tn_keras.layers.base_polynomial import BasePolynomial
from tn_keras.layers.polynomial import num_product_factors
from tn_keras.layers.polynomial import product_terms_sum
from tn_keras.layers.polynomial import symmetric_coefficients
from tn_keras.layers.polynomial import validate_order_and_rank
from tn_keras.layers.polynomial import validate_positive_int


def _pair(value, name):
    """``2`` -> ``(2, 2)``; ``(1, 2)`` stays; anything else is a ValueError naming ``name``."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        value = (int(value), int(value))
    try:
        value = tuple(int(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(
            f"Invalid value for argument `{name}`: expected an int or a tuple of 2 ints. "
            f"Received {name}={value!r}."
        ) from None
    if len(value) != 2 or min(value) < 1:
        raise ValueError(
            f"Invalid value for argument `{name}`: expected an int or a tuple of 2 ints, all "
            f">= 1. Received {name}={value!r}."
        )
    return value


def conv_output_length(length, kernel, stride, dilation, padding):
    """Output length of a convolution along one axis (``None`` stays ``None``)."""
    if length is None:
        return None
    if padding == "same":
        return math.ceil(length / stride)
    return (length - dilation * (kernel - 1) - 1) // stride + 1


@register_keras_serializable(package="tn_keras")
class PolyCG(BasePolynomial):
    """Polynomial coarse-graining: a local Taylor expansion over each patch (2-D).

    For each output site take the patch ``p`` of the input (``kh x kw x C_in`` values, sliding
    with ``strides`` and ``dilation_rate`` exactly as `keras.layers.Conv2D` does) and map it to
    ``filters`` values by the Taylor expansion, to order ``K = order``, of an unknown local map:

        z = b + W p + sum_{k=2..K} sum_{r=1..R} prod_{j=1..k} (U_{k,r,j} p)

    ``W p`` and every ``U_{k,r,j} p`` is a convolution with ``filters`` outputs; ``R = rank``
    is the CP rank of each order's coefficient tensor (see `tn_keras.layers.polynomial`).
    ``order=1`` is a convolution; ``order=2, rank=1`` is ``conv_a(x) + conv_b(x) * conv_c(x)``.
    There is no activation: the only non-linearity is the product, so a stack of ``L`` order-2
    layers is a polynomial of degree ``<= 2^L`` in the input (a renormalisation-group step per
    layer: the default 2x2 kernel with stride 2 maps each 2x2 block to one coarse site).

    All convolutions run as one fused convolution with ``filters * (1 + n)`` outputs
    (``n = rank * sum_{k=2..K} k`` factors), split afterwards, so the products cost only
    elementwise multiplies beyond the convolution of equal work.

    Paper: Yang, Xie, Yang, "Exploring explicit coarse-grained structure in artificial neural
    networks", Chin. Phys. Lett. 40, 020501 (2023), Supplement A.

    Args:
        filters: int, number of output channels.
        kernel_size: int or tuple of 2 ints, the patch size. Default 2.
        strides: int or tuple of 2 ints. Default 2 (non-overlapping 2x2 blocks).
            `strides > 1` is incompatible with `dilation_rate > 1`.
        padding: `"valid"` or `"same"`, as in Conv2D.
        order: int >= 1, the order of the Taylor expansion.
        rank: int >= 1, the CP rank of each order >= 2 term.
        dilation_rate: int or tuple of 2 ints (see also `DilatedPolyCG`).
        data_format: `"channels_last"` or `"channels_first"`; default from the Keras config.
        use_bias: bool, whether to add ``b``.
        kernel_initializer, kernel_regularizer, kernel_constraint: for the linear kernel ``W``
            (shape ``(kh, kw, C_in, filters)``, the same as Conv2D's).
        factor_initializer, factor_regularizer, factor_constraint: for the product factors
            ``U`` (one weight, shape ``(kh, kw, C_in, n * filters)``). The default (None) is a
            truncated normal of variance ``0.1 / fan_in``: products start small, so deep stacks
            train (see `tn_keras.layers.polynomial.default_factor_initializer`).
        bias_initializer, bias_regularizer, bias_constraint: for ``b``.
        activity_regularizer: optional regularizer of the output.

    Input shape: 4-D, ``(batch, rows, cols, C_in)`` (channels_last) or
        ``(batch, C_in, rows, cols)``. Output shape: as Conv2D with ``filters`` channels.
    """

    # Subclasses that fix an argument (DilatedPolyCG fixes strides=1) list it here so that
    # get_config leaves it out and from_config does not pass it twice.
    _fixed_arguments = ()
    weight_groups = {"kernel": "kernel", "factor": "factor_kernel", "bias": "bias"}

    def __init__(
        self,
        filters,
        kernel_size=2,
        strides=2,
        padding="valid",
        order=2,
        rank=1,
        dilation_rate=1,
        data_format=None,
        use_bias=True,
        kernel_initializer="glorot_uniform",
        factor_initializer=None,
        bias_initializer="zeros",
        kernel_regularizer=None,
        factor_regularizer=None,
        bias_regularizer=None,
        activity_regularizer=None,
        kernel_constraint=None,
        factor_constraint=None,
        bias_constraint=None,
        **kwargs,
    ):
        super().__init__(
            activity_regularizer=activity_regularizer,
            kernel_initializer=kernel_initializer,
            factor_initializer=factor_initializer,
            bias_initializer=bias_initializer,
            kernel_regularizer=kernel_regularizer,
            factor_regularizer=factor_regularizer,
            bias_regularizer=bias_regularizer,
            kernel_constraint=kernel_constraint,
            factor_constraint=factor_constraint,
            bias_constraint=bias_constraint,
            **kwargs,
        )
        validate_positive_int("filters", filters)
        validate_order_and_rank(order, rank)
        self.filters = int(filters)
        self.kernel_size = _pair(kernel_size, "kernel_size")
        self.strides = _pair(strides, "strides")
        self.dilation_rate = _pair(dilation_rate, "dilation_rate")
        if max(self.strides) > 1 and max(self.dilation_rate) > 1:
            raise ValueError(
                "`strides > 1` is not supported together with `dilation_rate > 1` (a dilated "
                f"patch slides by one site). Received strides={self.strides} and "
                f"dilation_rate={self.dilation_rate}."
            )
        padding = str(padding).lower()
        if padding not in ("valid", "same"):
            raise ValueError(
                f"Invalid value for argument `padding`: expected 'valid' or 'same'. "
                f"Received padding={padding!r}."
            )
        self.padding = padding
        data_format = keras_config.image_data_format() if data_format is None else data_format
        if data_format not in ("channels_last", "channels_first"):
            raise ValueError(
                "Invalid value for argument `data_format`: expected 'channels_last' or "
                f"'channels_first'. Received data_format={data_format!r}."
            )
        self.data_format = data_format
        self.order = int(order)
        self.rank = int(rank)
        self.use_bias = bool(use_bias)
        self.num_factors = num_product_factors(self.order, self.rank)
        self.input_spec = layers.InputSpec(ndim=4)

    @property
    def _channel_axis(self):
        return -1 if self.data_format == "channels_last" else 1

    def build(self, input_shape):
        if len(input_shape) != 4:
            raise ValueError(
                f"{type(self).__name__} expects a 4-D input (batch, rows, cols, channels); "
                f"received an input of shape {tuple(input_shape)}."
            )
        channels = input_shape[self._channel_axis]
        if channels is None:
            raise ValueError(
                f"The channel dimension of the input to {type(self).__name__} must be known; "
                f"received an input of shape {tuple(input_shape)}."
            )
        # Validates that the patch fits in the input (raises otherwise).
        self.compute_output_shape(input_shape)
        self.input_spec = layers.InputSpec(ndim=4, axes={self._channel_axis: channels})
        self.kernel = self.add_group_weight("kernel", self.kernel_size + (channels, self.filters))
        self.factor_kernel = None
        if self.num_factors:
            self.factor_kernel = self.add_group_weight(
                "factor", self.kernel_size + (channels, self.num_factors * self.filters))
        self.bias = self.add_group_weight("bias", (self.filters,)) if self.use_bias else None

    def call(self, inputs):
        kernel = self.kernel
        if self.factor_kernel is not None:
            # One convolution for the linear term and every factor: the efficient form.
            kernel = ops.concatenate([kernel, self.factor_kernel], axis=-1)
        outputs = ops.conv(
            inputs,
            kernel,
            strides=self.strides,
            padding=self.padding,
            dilation_rate=self.dilation_rate,
            data_format=self.data_format,
        )
        if self.factor_kernel is not None:
            pieces = ops.split(outputs, 1 + self.num_factors, axis=self._channel_axis)
            outputs = ops.add(pieces[0], product_terms_sum(pieces[1:], self.order, self.rank))
        if self.use_bias:
            bias_shape = (
                (1, 1, 1, self.filters)
                if self.data_format == "channels_last"
                else (1, self.filters, 1, 1)
            )
            outputs = ops.add(outputs, ops.reshape(self.bias, bias_shape))
        return outputs

    def compute_output_shape(self, input_shape):
        input_shape = tuple(input_shape)
        if len(input_shape) != 4:
            raise ValueError(
                f"{type(self).__name__} expects a 4-D input (batch, rows, cols, channels); "
                f"received an input of shape {input_shape}."
            )
        spatial = input_shape[1:3] if self.data_format == "channels_last" else input_shape[2:]
        out = []
        for axis, length in enumerate(spatial):
            new = conv_output_length(
                length,
                self.kernel_size[axis],
                self.strides[axis],
                self.dilation_rate[axis],
                self.padding,
            )
            if new is not None and new < 1:
                extent = self.dilation_rate[axis] * (self.kernel_size[axis] - 1) + 1
                raise ValueError(
                    f"The patch of {type(self).__name__} '{self.name}' (kernel_size="
                    f"{self.kernel_size}, dilation_rate={self.dilation_rate}: {extent} sites "
                    f"along spatial axis {axis}) does not fit in the input of shape "
                    f"{input_shape} with padding='valid'. Use a smaller kernel_size or "
                    "dilation_rate, a larger input, or padding='same'."
                )
            out.append(new)
        if self.data_format == "channels_last":
            return (input_shape[0], out[0], out[1], self.filters)
        return (input_shape[0], self.filters, out[0], out[1])

    def taylor_coefficients(self, max_order=None):
        """The exact Taylor coefficients of the patch map, as float64 NumPy arrays.

        The patch ``p`` is flattened in ``(row, col, channel)`` order (``P = kh * kw * C_in``
        numbers), so that for every output site and filter ``f``

            z_f = bias[f] + sum_i linear[f, i] p_i + sum_{k>=2} sum_{i1..ik} order_k[f, i1..ik]
                  p_i1 ... p_ik .

        Returns:
            dict with ``"bias"`` ``(F,)``, ``"linear"`` ``(F, P)`` and, for ``k = 2 ..
            min(order, max_order)``, ``"order_k"`` ``(F, P, ..., P)``, symmetric in its ``k``
            patch axes.
        """
        if not self.built:
            raise ValueError(
                f"Layer '{self.name}' is not built yet: call it on an input (or build it) "
                "before asking for its Taylor coefficients."
            )
        patch_size = int(np.prod(self.kernel.shape[:3]))
        # (kh, kw, C, F) -> (F, P) with p flattened in (row, col, channel) order.
        linear = np.asarray(ops.convert_to_numpy(self.kernel), np.float64)
        linear = linear.reshape(patch_size, self.filters).T
        bias = (
            np.asarray(ops.convert_to_numpy(self.bias), np.float64)
            if self.use_bias
            else np.zeros(self.filters)
        )
        result = {"bias": bias, "linear": linear}
        order = self.order if max_order is None else min(self.order, int(max_order))
        if order >= 2:
            factors = np.asarray(ops.convert_to_numpy(self.factor_kernel), np.float64)
            factors = factors.reshape(patch_size, self.num_factors, self.filters)
            factors = factors.transpose(1, 2, 0)  # (piece, F, P)
            tensors = symmetric_coefficients(
                factors[: num_product_factors(order, self.rank)], order, self.rank
            )
            result.update({f"order_{k}": t for k, t in tensors.items()})
        return result

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "filters": self.filters,
                "kernel_size": self.kernel_size,
                "strides": self.strides,
                "padding": self.padding,
                "order": self.order,
                "rank": self.rank,
                "dilation_rate": self.dilation_rate,
                "data_format": self.data_format,
                "use_bias": self.use_bias,
            }
        )
        config.update(self.weight_options_config())
        for name in self._fixed_arguments:
            config.pop(name)
        return config


@register_keras_serializable(package="tn_keras")
class DilatedPolyCG(PolyCG):
    """PolyCG on a dilated patch with stride 1: the paper's diCG layer.

    The same expansion as `PolyCG`,

        z = b + W p + sum_{k=2..K} sum_{r=1..R} prod_{j=1..k} (U_{k,r,j} p) ,

    where the patch ``p`` gathers ``kh x kw`` sites ``dilation_rate`` apart
    (``p = x[i + d_r * a, j + d_c * c, :]`` for ``a < kh, c < kw``). With 'valid' padding a 2x2
    kernel of dilation ``d`` maps an ``n x n`` map to ``(n - d) x (n - d)``: on an 8x8 map,
    dilations 4, 2, 1 coarse-grain sites 4, 2 and 1 apart, a complete binary tree down to one
    site without striding (Fig. S3: diCG(2, 2, 128, 1, 1, 4) and diCG(2, 2, 128, 1, 1, 2)).

    Args:
        filters: int, number of output channels.
        kernel_size: int or tuple of 2 ints. Default 2.
        dilation_rate: int or tuple of 2 ints. Default 2.
        Every other argument as in `PolyCG`; `strides` is always 1.
    """

    _fixed_arguments = ("strides",)

    def __init__(self, filters, kernel_size=2, dilation_rate=2, padding="valid", **kwargs):
        if "strides" in kwargs:
            raise ValueError(
                "DilatedPolyCG always slides by one site: do not pass `strides` (received "
                f"strides={kwargs['strides']!r}); use PolyCG for a strided coarse-graining."
            )
        super().__init__(
            filters,
            kernel_size=kernel_size,
            strides=1,
            padding=padding,
            dilation_rate=dilation_rate,
            **kwargs,
        )
