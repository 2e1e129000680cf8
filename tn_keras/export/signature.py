"""The one input an exportable model must have: a single image batch, channels last."""
from typing import Optional, Tuple

import keras
import numpy as np

#: What every zoo model takes (and what the manifest records as the input's value range).
VALUE_RANGE = "raw pixels 0..255"


def image_input_shape(model: keras.Model, require_static: bool) -> Tuple[Optional[int], ...]:
    """The per-image input shape ``(H, W, C)`` of ``model``.

    Args:
        model: a built Keras model with exactly one 4-D input.
        require_static: TFLite needs every size known at conversion time (a polynomial network
            has no global pooling to absorb a variable image size, and the converter would
            otherwise leave dynamic reshapes that LiteRT cannot plan), so the TFLite formats ask
            for a fully known shape.

    Raises:
        ValueError: several inputs, a non-image input, or unknown sizes when required.
    """
    inputs = getattr(model, "inputs", None)
    if not inputs:
        raise ValueError(
            f"Model {model.name!r} has no known inputs: build it (call it on a batch or create "
            "it with keras.Input) before exporting."
        )
    if len(inputs) != 1:
        raise ValueError(
            f"Model {model.name!r} has {len(inputs)} inputs; tn_keras exports single-input "
            "image classifiers only."
        )
    shape = tuple(inputs[0].shape)
    if len(shape) != 4:
        raise ValueError(
            f"Model {model.name!r} takes inputs of shape {shape}; tn_keras exports image models "
            "with a 4-D (batch, height, width, channels) input."
        )
    per_image = tuple(None if d is None else int(d) for d in shape[1:])
    if require_static and None in per_image:
        raise ValueError(
            f"Model {model.name!r} has an unknown input size {per_image} (None = any size); "
            "TFLite export needs a fixed (height, width, channels). Rebuild the model with a "
            "fixed input_shape, e.g. zoo.build(name, input_shape=(32, 32, 3)), and copy the "
            "weights over with set_weights()."
        )
    return per_image


def as_image_batch(x, image_shape: tuple, what: str = "images",
                   allow_empty: bool = False) -> np.ndarray:
    """``x`` as float32 ``(N,) + image_shape``; ``(N, H, W)`` gains the channel axis when C = 1.

    Any other mismatch is an error, never a silent reshape of the layout.
    """
    x = np.asarray(x)
    image_shape = tuple(image_shape)
    if x.ndim == len(image_shape) and image_shape[-1] == 1 and x.shape[1:] == image_shape[:-1]:
        x = x[..., None]
    if x.ndim != len(image_shape) + 1 or tuple(x.shape[1:]) != image_shape:
        raise ValueError(
            f"{what} must be a batch of shape (N,) + {image_shape} (raw pixels 0..255); "
            f"received an array of shape {x.shape}."
        )
    if len(x) == 0 and not allow_empty:
        raise ValueError(f"{what} is empty.")
    return x.astype(np.float32, copy=False)
