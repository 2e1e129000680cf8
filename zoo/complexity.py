"""Counting multiply-accumulates (MACs) per image, layer by layer.

BatchNorm, Normalization, padding and pooling are not counted: at inference BatchNorm folds into
the preceding layer, and the others cost no multiplications worth counting. PolyCG counts its
fused convolution plus one multiply per factor beyond the first in every product.
"""
import math

from keras import layers

from tn_keras.layers import PatchWhitening
from tn_keras.layers import PolyCG
from tn_keras.layers import TaylorDense


def layer_macs(layer):
    """MACs of one call of ``layer`` on one example (0 for layers not counted)."""
    if isinstance(layer, PolyCG):
        _, *out_dims = layer.output.shape
        sites = math.prod(out_dims) // layer.filters
        patch = math.prod(layer.kernel.shape[:3])
        products = sum((k - 1) * layer.rank for k in range(2, layer.order + 1))
        return sites * layer.filters * (patch * (1 + layer.num_factors) + products)
    if isinstance(layer, (layers.Conv2D, PatchWhitening)):
        _, *out_dims = layer.output.shape
        sites = math.prod(out_dims) // layer.filters
        return sites * math.prod(layer.kernel.shape)
    if isinstance(layer, TaylorDense):
        features = layer.kernel.shape[0]
        macs = features * layer.units
        if layer.quadratic_kernel is not None:
            monomials = features * (features + 1) // 2
            macs += monomials * (layer.units + 1)  # the products x_i x_j, then Q
        elif layer.factor_kernel is not None:
            macs += features * layer.factor_kernel.shape[1]
            macs += layer.units * sum((k - 1) * layer.rank for k in range(2, layer.order + 1))
        return macs
    if isinstance(layer, layers.Dense):
        return math.prod(layer.kernel.shape)
    return 0


def model_macs(model):
    """Total MACs per image of a built functional model."""
    return sum(layer_macs(layer) for layer in model.layers)
