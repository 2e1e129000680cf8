"""Keras model -> TensorFlow SavedModel, through Keras 3's own ``Model.export``.

``Model.export(format="tf_saved_model")`` traces the model's inference call (``training=False``)
into a standalone artifact: no tn_keras, no custom-layer code is needed to reload it, and it
serves the endpoint ``serve`` plus the ``serving_default`` signature. The same artifact, traced
with a known image size and a dynamic batch, is what the TFLite converter starts from
(`tn_keras.export.tflite`).
"""
import os
from typing import Optional

import keras
import numpy as np
import tensorflow as tf

from tn_keras.export.signature import image_input_shape

#: The endpoint (callable attribute) of the reloaded SavedModel.
ENDPOINT = "serve"


def input_name(model: keras.Model) -> str:
    # The signature's argument name is what TF Serving / the TFLite signature runner expose;
    # the zoo names its input "image". Fall back to that for names that are not identifiers.
    name = getattr(model.inputs[0], "name", None) or "image"
    name = name.split(":")[0]
    return name if name.isidentifier() else "image"


def write_saved_model(model: keras.Model, folder: str, batch_size: Optional[int] = None,
                      static_image: bool = False) -> None:
    """Write ``model`` as a SavedModel into ``folder`` (which must not exist yet).

    Args:
        model: a single-input image model.
        folder: the SavedModel directory to create.
        batch_size: None keeps the batch dimension dynamic; an int fixes it.
        static_image: require a known ``(H, W, C)`` (the TFLite formats: LiteRT plans every
            tensor from the image size, and only the batch may then be resized at run time).
    """
    shape = image_input_shape(model, require_static=static_image or batch_size is not None)
    spec = tf.TensorSpec((batch_size,) + shape, tf.float32, name=input_name(model))
    model.export(folder, format="tf_saved_model", input_signature=[spec], verbose=False)


def load_saved_model(folder: str):
    """Reload a SavedModel written by `write_saved_model` (a ``tf.saved_model.load`` object)."""
    return tf.saved_model.load(folder)


def saved_model_predict(loaded, x: np.ndarray) -> np.ndarray:
    """Run the reloaded SavedModel's ``serve`` endpoint on a float32 batch."""
    return np.asarray(getattr(loaded, ENDPOINT)(tf.constant(np.asarray(x, np.float32))))



class SavedModelRuntime:
    """A SavedModel folder written by `tn_keras.export.export`, run like `TFLiteModel`:
    ``predict(x, batch_size=256)`` on raw images (the ``saved_model`` format's runtime)."""

    def __init__(self, folder):
        self.path = os.fspath(folder)
        if not os.path.isdir(self.path):
            raise NotADirectoryError(f"No SavedModel folder at {self.path}.")
        self._loaded = load_saved_model(self.path)

    def predict(self, x, batch_size: int = 256, verbose=None) -> np.ndarray:
        """Outputs for a batch of raw images, ``batch_size`` at a time (``verbose`` is ignored,
        as for `TFLiteModel`)."""
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int; received {batch_size!r}.")
        x = np.asarray(x)
        parts = [saved_model_predict(self._loaded, x[start:start + batch_size])
                 for start in range(0, len(x), batch_size)]
        return np.concatenate(parts) if parts else np.zeros((0,), np.float32)

    __call__ = predict
