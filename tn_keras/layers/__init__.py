"""Polynomial coarse-graining layers: every non-linearity is a product, none an activation."""
from tn_keras.layers.initializers import DiracUniform
from tn_keras.layers.initializers import StackedIdentity
from tn_keras.layers.poly_cg import DilatedPolyCG
from tn_keras.layers.poly_cg import PolyCG
from tn_keras.layers.taylor_dense import TaylorDense
from tn_keras.layers.whitening import PatchWhitening
from tn_keras.layers.whitening import patch_whitening_kernel

__all__ = ["PolyCG", "DilatedPolyCG", "TaylorDense", "PatchWhitening", "patch_whitening_kernel",
           "DiracUniform", "StackedIdentity"]
