"""A training penalty that moves a polynomial network's logits into its low orders.

A TaylorNet's logit is exactly a polynomial, and along the ray from an expansion point ``x0``
(the training mean image) to an image ``x`` it is a polynomial of one variable,

    g(t) = f(x0 + t (x - x0)) = sum_{k=0..D} a_k t^k,        g(1) = f(x),

whose coefficients ``a_k`` are the orders that `tn_keras.interpret.order_share` weighs. The
orders a reader can look at are ``k <= 2``; a deep network spreads its logit over orders up to
``D`` that cancel one another. `LowOrderPenalty` measures how far ``g`` is from a quadratic on
``[-1, 1]``: at ``n`` Chebyshev-Lobatto nodes ``t_j = cos(pi j / (n - 1))`` (``t = 1`` is the
image itself, ``t = 0`` the point) it projects the values onto quadratics in ``t`` by least
squares (``P = V (V^T V)^-1 V^T`` with ``V_j = (1, t_j, t_j^2)``) and takes the residual's
energy relative to the values' spread about their node mean (``C = I - 1 1^T / n``),

    penalty = sum_{images, classes} |(I - P) g|^2 / sum_{images, classes} |C g|^2,

which is 0 exactly when every logit is quadratic at the nodes, and at most 1. A cubic or
higher part that cancels at ``t = 1`` (the image) does not cancel at ``t = -1`` or between,
so the nodes see the high orders that ``f(x)`` alone hides. The penalty is scale-free: the
network cannot satisfy it by shrinking its logits, which the cross-entropy wants large.

It costs ``n - 2`` more forward passes of every batch (``t = 0`` is one image). The network
is trained with every BatchNormalization frozen in inference mode (`with_low_order_penalty`):
in training mode a batch's statistics would differ at every node, so ``g`` would not be the
polynomial the checkpoint computes. That makes it a fine-tuning step for a trained network.
"""
from __future__ import annotations

import keras
import numpy as np

#: Chebyshev-Lobatto nodes on [-1, 1]: five give the quadratic fit two degrees of freedom
#: to spare, at three extra forward passes a batch.
DEFAULT_NODES = 5


def lobatto_nodes(n):
    """``t_j = cos(pi j / (n - 1))``, j = 0..n-1: from 1 (the image) down to -1."""
    if int(n) != n or n < 4:
        raise ValueError(f"nodes must be an integer >= 4 (a quadratic has 3 coefficients, "
                         f"so fewer nodes leave no residual); received {n!r}.")
    t = np.cos(np.pi * np.arange(int(n)) / (int(n) - 1))
    t[np.abs(t) < 1e-12] = 0.0  # the middle node is the point itself, exactly
    return t


def residual_operators(nodes):
    """``(I - P, C)``: the residual of the least-squares quadratic in ``t`` at ``nodes``, and
    the removal of the node mean (module docstring); float32 ``(n, n)`` matrices."""
    t = np.asarray(nodes, np.float64)
    vandermonde = np.stack([np.ones_like(t), t, t * t], axis=1)
    projection = vandermonde @ np.linalg.pinv(vandermonde)
    n = len(t)
    return ((np.eye(n) - projection).astype("float32"),
            (np.eye(n) - np.full((n, n), 1.0 / n)).astype("float32"))


class LowOrderPenalty(keras.layers.Layer):
    """Returns the logits of its input images and adds ``weight * penalty`` to the model's
    losses (the module docstring has the maths).

    Args:
        logits_model: a Keras model from raw images to logits (shares its weights with the
            network being trained).
        center: the expansion point ``x0``, an image of the model's input shape (raw pixels).
        weight: the penalty's factor in the loss (0 computes nothing extra).
        nodes: how many Chebyshev-Lobatto nodes on ``[-1, 1]`` (>= 4).
    """

    def __init__(self, logits_model, center, weight, nodes=DEFAULT_NODES, **kwargs):
        super().__init__(**kwargs)
        if not np.isfinite(weight) or weight < 0:
            raise ValueError(f"weight must be a finite number >= 0; received {weight!r}.")
        self.logits_model = logits_model
        self.weight = float(weight)
        self.nodes = lobatto_nodes(nodes)
        center = np.asarray(center, "float32")
        expected = tuple(logits_model.input_shape[1:])
        if center.shape != expected:
            raise ValueError(f"center has shape {center.shape}; the model takes images of "
                             f"shape {expected}.")
        self.center = center
        self.residual, self.centring = residual_operators(self.nodes)

    def penalty(self, x):
        """The penalty of the images ``x`` and their logits ``f(x)`` (``t = 1``)."""
        center = keras.ops.convert_to_tensor(self.center[None])
        direction = x - center
        values = []
        for t in self.nodes:
            if t == 1.0:
                values.append(self.logits_model(x))
            elif t == 0.0:  # the point itself: one image, the same for the whole batch
                values.append(keras.ops.zeros_like(values[0]) + self.logits_model(center))
            else:
                values.append(self.logits_model(center + float(t) * direction))
        g = keras.ops.stack(values, axis=0)  # (nodes, batch, classes)
        high = keras.ops.einsum("ij,jbc->ibc", self.residual, g)
        spread = keras.ops.einsum("ij,jbc->ibc", self.centring, g)
        ratio = keras.ops.sum(high * high) / (keras.ops.sum(spread * spread) + 1e-12)
        return ratio, values[0]

    def call(self, x):
        if self.weight == 0.0:
            return self.logits_model(x)
        ratio, logits = self.penalty(x)
        self.add_loss(self.weight * ratio)
        return logits


def with_low_order_penalty(model, center, weight, nodes=DEFAULT_NODES):
    """A training model over ``model``'s weights: its probabilities, plus ``weight`` times the
    `LowOrderPenalty` of its logits about ``center`` as an added loss.

    ``model`` is a zoo network (a ``logits`` layer before its softmax); its BatchNormalization
    layers are frozen (inference mode, module docstring), and training the returned model
    trains ``model`` itself. Compile and ``fit`` it like any Keras model; predict, evaluate and
    save ``model``.
    """
    try:
        logits = model.get_layer("logits").output
    except ValueError:
        raise ValueError(f"model {model.name!r} has no layer named 'logits' (the output before "
                         "its softmax), which the penalty expands.") from None
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.trainable = False
    logits_model = keras.Model(model.inputs, logits, name=f"{model.name}_logits")
    inputs = keras.Input(model.input_shape[1:], name="image")
    penalised = LowOrderPenalty(logits_model, center, weight, nodes, name="low_order_penalty")
    outputs = keras.layers.Activation("softmax", dtype="float32",
                                      name="predictions")(penalised(inputs))
    return keras.Model(inputs, outputs, name=f"{model.name}_low_order")


def thaw_batch_norm(model):
    """Make every BatchNormalization layer of ``model`` trainable again once the penalised
    training is over (`with_low_order_penalty` froze them): a checkpoint is a model like any
    other, and whoever loads it decides what to train."""
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.trainable = True
