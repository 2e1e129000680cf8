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

