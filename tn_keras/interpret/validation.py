"""Checks on what the user passes to `tn_keras.interpret`: one clear error, never a guess."""
from __future__ import annotations

import numpy as np


def image_shape(model):
    """The model's input shape without the batch axis; every axis must be known."""
    shape = tuple(model.inputs[0].shape[1:])
    if any(d is None for d in shape):
        raise ValueError(f"model '{model.name}' has an input of shape {shape}: interpretation "
                         "needs every axis but the batch one known.")
    return shape


def check_images(x, shape, name="x"):
    """``x`` as float64 ``(N,) + shape``; a single image gets a batch axis of 1.

    Raises:
        ValueError: naming ``name``, for a wrong shape, a non-numeric array or NaN / inf.
    """
    try:
        x = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: expected a numeric array of images of shape (N,) + {shape}."
                         ) from None
    if x.shape == shape:
        x = x[None]
    if x.shape[1:] != shape or x.ndim != len(shape) + 1:
        raise ValueError(f"{name}: expected images of shape (N,) + {shape} (or one image of "
                         f"shape {shape}), received shape {x.shape}.")
    if len(x) == 0:
        raise ValueError(f"{name}: received no images (shape {x.shape}).")
    bad = ~np.isfinite(x)
    if bad.any():
        first = np.argwhere(bad)[0]
        raise ValueError(f"{name} contains {int(bad.sum())} NaN or infinite value(s), the first "
                         f"at index {tuple(int(i) for i in first)}.")
    return x


def check_center(center, shape, name="center"):
    """``center`` as one float64 image of ``shape``: None is the zero image, a number is
    broadcast to every pixel."""
    if center is None:
        return np.zeros(shape)
    array = np.asarray(center, dtype=np.float64)
    if array.ndim == 0:
        array = np.full(shape, float(array))
    elif array.shape != shape and array.shape == (1,) + shape:
        array = array[0]
    if array.shape != shape:
        raise ValueError(f"{name}: expected one image of shape {shape} (or a number), "
                         f"received shape {array.shape}.")
    return check_images(array, shape, name)[0]
