"""Fold each BatchNormalization into the polynomial layer before it (for TFLite export).

At inference a BatchNormalization is a per-channel affine map ``y = s * z + t`` with
``s = gamma / sqrt(moving_variance + epsilon)`` and ``t = beta - s * moving_mean``. After a
polynomial layer

    z_f = b_f + (W p)_f + sum_terms prod_{j<k} (U_j p)_f

it is absorbed exactly by rescaling the weights, channel by channel:

    s_f z_f + t_f = (s_f b_f + t_f) + (s_f W p)_f + sum_terms prod_j (g_jf U_j p)_f ,
    with prod_j g_jf = s_f.

TFLite folds a BatchNormalization into a preceding Conv2D itself, but not into a product of
convolutions, so without this step the un-normalised layer output is a tensor of its own. Its
channels differ in scale by up to 30x in the trained cifar_taylornet (per-channel standard
deviations of 9.7 to 183 after diCG2), and int8 gives a whole tensor one scale, set by the
largest value: the small channels then round to a few levels, and BatchNormalization amplifies
that error by its large ``s`` of those channels. Folding removes the tensor.

How ``s_f`` is shared among the ``k`` factors of a product term matters for the same reason:
the factors are channels of one fused convolution, so they share one int8 scale too. Each
factor's rescaling ``g_jf`` is chosen so that all ``k`` factors of channel ``f`` get the same
weight norm, ``(|s_f| prod_j ||U_jf||)^(1/k)`` (the sign of ``s_f`` goes to the first factor):
the cross-layer equalisation of Nagel et al., "Data-Free Quantization Through Weight
Equalization and Bias Correction" (ICCV 2019), applied within a product.

The folded model computes the same function up to float32 rounding; `export` checks it.
"""
from typing import List, Tuple

import keras
import numpy as np

from tn_keras.export import graph
from tn_keras.layers import PolyCG
from tn_keras.layers import TaylorDense


def fold_batch_normalization(model: keras.Model) -> Tuple[keras.Model, List[dict]]:
    """A copy of ``model`` with every foldable BatchNormalization merged into its polynomial layer.

    A BatchNormalization is folded when its only input is the output of a `PolyCG` (or
    `DilatedPolyCG`) or factorised `TaylorDense` that feeds nothing else, and it normalises that
    layer's channel axis. It leaves the graph; every other layer is shared with ``model`` (the
    copy is meant for export, not for training).

    Returns:
        ``(folded_model, record)``: ``record`` lists ``{"layer", "batch_normalization"}`` for
        each fold (empty, and the model returned unchanged, when there is nothing to fold).
    """
    pairs = _foldable_pairs(model)
    if not pairs:
        return model, []
    folded_layers = {}
    bn_names = {bn.name for bn in pairs.values()}

    def clone_layer(layer):
        if layer.name in pairs:
            config = dict(layer.get_config(), use_bias=True)
            clone = type(layer).from_config(config)
            folded_layers[layer.name] = clone
            return clone
        return layer

    def call_layer(layer, *args, **kwargs):
        if layer.name in bn_names:
            return args[0]  # the folded BatchNormalization leaves the graph
        return layer(*args, **kwargs)

    folded = keras.models.clone_model(model, clone_function=clone_layer,
                                      call_function=call_layer)
    record = []
    for name, bn in pairs.items():
        source = model.get_layer(name)
        folded_layers[name].set_weights(_folded_weights(source, bn))
        record.append({"layer": name, "batch_normalization": bn.name})
    return folded, record


def _foldable_pairs(model) -> dict:
    """``{polynomial layer name: the BatchNormalization that alone consumes its output}``."""
    model_graph = graph.model_graph(model)
    if model_graph is None:
        return {}
    pairs = {}
    for layer in model.layers:
        if not isinstance(layer, keras.layers.BatchNormalization):
            continue
        calls = model_graph.calls(layer.name)
        if len(calls) != 1:
            continue  # a shared BatchNormalization cannot take one layer's weights
        if len(calls[0].inputs) != 1:
            continue
        tensor = calls[0].inputs[0]
        parent = model.get_layer(tensor.layer)
        if not _is_foldable_polynomial(parent):
            continue
        if (len(model_graph.calls(parent.name)) != 1
                or len(model_graph.consumers(parent.name)) != 1
                or model_graph.is_output(parent.name)):
            continue  # its output feeds something besides this BatchNormalization
        ndim = len(tensor.shape)
        channel_axis = ndim - 1
        if isinstance(parent, PolyCG) and parent.data_format == "channels_first":
            channel_axis = 1
        if layer.axis % ndim != channel_axis:
            continue
        pairs[parent.name] = layer
    return pairs


def _is_foldable_polynomial(layer) -> bool:
    if isinstance(layer, PolyCG):
        return True
    # The exact quadratic form (rank=None) is foldable too: Q is linear in its output units.
    return isinstance(layer, TaylorDense)


def _batch_norm_affine(bn) -> Tuple[np.ndarray, np.ndarray]:
    """``(s, t)`` with ``bn(z) = s * z + t`` at inference."""
    mean = np.asarray(bn.moving_mean, np.float64)
    variance = np.asarray(bn.moving_variance, np.float64)
    gamma = np.asarray(bn.gamma, np.float64) if bn.gamma is not None else np.ones_like(mean)
    beta = np.asarray(bn.beta, np.float64) if bn.beta is not None else np.zeros_like(mean)
    s = gamma / np.sqrt(variance + bn.epsilon)
    return s, beta - s * mean


def _folded_weights(layer, bn) -> list:
    """The weights of ``layer`` (with ``use_bias=True``) that compute ``bn(layer(x))``."""
    s, t = _batch_norm_affine(bn)
    units = s.shape[0]
    kernel = np.asarray(layer.kernel, np.float64) * s
    weights = [kernel]
    if getattr(layer, "quadratic_kernel", None) is not None:
        weights.append(np.asarray(layer.quadratic_kernel, np.float64) * s)
    if layer.factor_kernel is not None:
        weights.append(_equalised_factors(np.asarray(layer.factor_kernel, np.float64), s,
                                          layer.order, layer.rank, units))
    bias = np.asarray(layer.bias, np.float64) if layer.bias is not None else np.zeros(units)
    weights.append(s * bias + t)
    return [w.astype(np.float32) for w in weights]


def _equalised_factors(factor_kernel, s, order, rank, units) -> np.ndarray:
    """Spread ``s`` over the factors of every product term so they have equal norms per unit.

    ``factor_kernel`` has shape ``(..., n * units)``, factor ``piece`` of unit ``f`` in column
    ``piece * units + f``, pieces in ``(k, r, j)`` order (`tn_keras.layers.polynomial`).
    """
    shape = factor_kernel.shape
    pieces = factor_kernel.reshape(-1, shape[-1] // units, units)  # (fan_in, n, units)
    norms = np.sqrt(np.sum(pieces**2, axis=0))  # (n, units)
    out = pieces.copy()
    index = 0
    for k in range(2, order + 1):
        for _ in range(rank):
            term = slice(index, index + k)
            term_norms = norms[term]
            alive = np.all(term_norms > 0, axis=0)
            # Target norm per unit: the geometric mean of the rescaled term's factor norms.
            target = np.where(
                alive, (np.abs(s) * np.prod(np.where(alive, term_norms, 1.0), axis=0))
                ** (1.0 / k), 1.0)
            gains = np.where(alive, target / np.where(alive, term_norms, 1.0), 1.0)
            gains[0] = np.where(alive, gains[0] * np.sign(s), s)  # a dead term: any split
            out[:, term, :] *= gains[None]
            index += k
    return out.reshape(shape)
