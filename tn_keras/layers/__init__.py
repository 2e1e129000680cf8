"""Polynomial coarse-graining layers: every non-linearity is a product, none an activation."""
from tn_keras.layers.poly_cg import DilatedPolyCG
from tn_keras.layers.poly_cg import PolyCG
from tn_keras.layers.taylor_dense import TaylorDense

__all__ = ["PolyCG", "DilatedPolyCG", "TaylorDense"]
