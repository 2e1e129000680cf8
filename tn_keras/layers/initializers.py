"""Initialisers the zoo's fast-recipe networks use, registered so saved models reload."""
import math

import numpy as np
from keras import initializers
from keras import ops
from keras import random
from keras.saving import register_keras_serializable


@register_keras_serializable(package="tn_keras")
class DiracUniform(initializers.Initializer):
    """A convolution kernel ``(kh, kw, C_in, C_out)`` drawn uniform in ``+-1/sqrt(fan_in)``
    (PyTorch's default for convolutions), whose first ``min(C_in, C_out)`` filters are then set
    to the identity: filter ``f`` passes input channel ``f`` through its centre tap.

    A convolution so started is close to the identity on the channels it keeps, which lets a
    deep stack of them train at a large learning rate from the first step (airbench's
    ``dirac_`` initialisation).
    """

    def __init__(self, seed=None):
        self.seed = seed

    def __call__(self, shape, dtype=None):
        if len(shape) != 4:
            raise ValueError(f"DiracUniform initialises 4-D convolution kernels (kh, kw, "
                             f"C_in, C_out); received shape {tuple(shape)}.")
        kh, kw, c_in, c_out = shape
        bound = 1.0 / math.sqrt(kh * kw * c_in)
        # keras.random: seeded by `keras.utils.set_random_seed` when ``seed`` is None.
        kernel = np.array(ops.convert_to_numpy(random.uniform(
            shape, minval=-bound, maxval=bound, dtype="float32", seed=self.seed)))
        keep = min(c_in, c_out)
        kernel[:, :, :, :keep] = 0.0
        kernel[kh // 2, kw // 2, np.arange(keep), np.arange(keep)] = 1.0
        return kernel.astype(dtype or "float32")

    def get_config(self):
        return {"seed": self.seed}



@register_keras_serializable(package="tn_keras")
class StackedIdentity(initializers.Initializer):
    """A 1x1 kernel ``(1, 1, C, k * C)``: ``k`` scaled identities side by side,
    ``[g_1 I, g_2 I, ..., g_k I]`` with ``gains = (g_1, ..., g_k)``.

    For a 1x1 `PolyCG` of order 2 and rank 1 (``W z + (U z) * (V z)``), the linear kernel
    ``StackedIdentity((a,))`` and the factor kernel ``StackedIdentity((1, c))`` make the layer
    the per-channel quadratic ``a z + c z^2``: a polynomial stand-in for an activation that
    can later learn products across channels.
    """

    def __init__(self, gains=(1.0,)):
        self.gains = tuple(float(g) for g in gains)

    def __call__(self, shape, dtype=None):
        k = len(self.gains)
        if len(shape) != 4 or shape[0] != 1 or shape[1] != 1 or shape[3] != k * shape[2]:
            raise ValueError(f"StackedIdentity with {k} gains initialises 1x1 kernels of shape "
                             f"(1, 1, C, {k} * C); received shape {tuple(shape)}.")
        channels = shape[2]
        kernel = np.zeros(shape, np.float32)
        for i, gain in enumerate(self.gains):
            kernel[0, 0, np.arange(channels), i * channels + np.arange(channels)] = gain
        return kernel.astype(dtype or "float32")

    def get_config(self):
        return {"gains": list(self.gains)}
