"""Synthetic images as the weights of a Keras layer, so that Keras computes their gradients.

Both distillation methods optimise pixels, not network weights. Rather than one gradient loop
per backend, the images are the single trainable variable of a `SyntheticImages` layer,
``P`` of shape ``(groups, H, W, C)`` with the constraint `ClipPixels` (``P <- clip(P, 0, 255)``
after every optimiser step, which Keras applies itself). A method's model applies the frozen
network(s) to ``P`` and is trained with ``compile`` / ``train_on_batch`` and a Keras optimizer on
any backend.
"""
from __future__ import annotations

import keras
import numpy as np
from keras import ops

from tn_keras.distill.config import PIXEL_MAX
from tn_keras.distill.config import PIXEL_MIN


class ClipPixels(keras.constraints.Constraint):
    """``w -> clip(w, 0, 255)``: synthetic images stay in the raw pixel range."""

    def __call__(self, w):
        return ops.clip(w, PIXEL_MIN, PIXEL_MAX)


class SyntheticImages(keras.layers.Layer):
    """A trainable batch of images ``P`` (groups, H, W, C), started at ``start``.

    ``call(rows)`` returns ``P[rows]`` (the images of the given groups), so a model can
    optimise all images or a random batch of them per step.
    """

    def __init__(self, start, **kwargs):
        # float32 whatever the global dtype policy: in bfloat16 a pixel step of 0.25 grey
        # levels would round away (bfloat16 resolves 1-2 grey levels near 255).
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        self._start = np.asarray(start, dtype="float32")
        self.pixels = self.add_weight(
            shape=self._start.shape, initializer="zeros", constraint=ClipPixels(),
            trainable=True, name="pixels")
        self.pixels.assign(self._start)

    def call(self, rows):
        return ops.take(self.pixels, rows, axis=0)

    def numpy(self) -> np.ndarray:
        return np.asarray(ops.convert_to_numpy(self.pixels), dtype=np.float32)


def frozen_copy(model: keras.Model) -> keras.Model:
    """A copy of a functional ``model`` with the same weights and every layer frozen.

    The synthesis models only train their pixels: the copy keeps Keras from computing (and the
    optimiser from applying) updates to the trained network, without touching the caller's
    model (the `MultiLevelDistillation` callback distils with a model that is still training).
    """
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    copy.trainable = False
    return copy
