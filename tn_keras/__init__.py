"""tn_keras: coarse-grained polynomial networks (TaylorNet) for Keras 3.

Paper: Xi-Ci Yang, Z. Y. Xie, Xiao-Tao Yang, "Exploring explicit coarse-grained structure in
artificial neural networks", Chinese Physics Letters 40, 020501 (2023), arXiv:2211.01779.
"""
from tn_keras.version import __version__
from tn_keras import layers

__all__ = ["__version__", "layers"]
