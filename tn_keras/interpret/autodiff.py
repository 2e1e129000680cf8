"""Gradients and Hessian rows of a batched scalar function, one small function per backend.

This is the only module of `tn_keras.interpret` that talks to a backend's automatic
differentiation directly (``tf.GradientTape``, ``jax.grad``, ``torch.autograd.grad``); each
backend is imported lazily, so TensorFlow is never imported under JAX or PyTorch.

``fn`` maps a batch ``x`` (B, ...) to one number per example (B,); examples are independent
(a model at inference), so the gradient of ``sum_b fn(x_b)`` is every example's own gradient.
"""
from __future__ import annotations

import keras
import numpy as np


def gradient(fn, x):
    """``d fn(x_b) / d x_b`` for every example: an array of ``x``'s shape."""
    return _functions()[0](fn, x)


def hessian_rows(fn, x, directions):
    """``H(x_b) v_b`` for every example: the Hessian of ``fn`` at ``x_b`` times ``v_b``.

    With ``v_b`` a unit vector ``e_i`` this is row ``i`` of the Hessian (forward-free:
    the gradient of ``<grad fn, v>``, two reverse passes).
    """
    return _functions()[1](fn, x, directions)


def _tf_gradient(fn, x):
    import tensorflow as tf

    x = tf.convert_to_tensor(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        total = tf.reduce_sum(fn(x))
    return tape.gradient(total, x).numpy()


def _tf_hessian_rows(fn, x, directions):
    import tensorflow as tf

    x = tf.convert_to_tensor(x)
    v = tf.convert_to_tensor(directions, dtype=x.dtype)
    with tf.GradientTape() as outer:
        outer.watch(x)
        with tf.GradientTape() as inner:
            inner.watch(x)
            total = tf.reduce_sum(fn(x))
        projected = tf.reduce_sum(inner.gradient(total, x) * v)
    return outer.gradient(projected, x).numpy()


def _jax_gradient(fn, x):
    import jax
    import jax.numpy as jnp

    return np.asarray(jax.grad(lambda z: jnp.sum(fn(z)))(jnp.asarray(x)))


def _jax_hessian_rows(fn, x, directions):
    import jax
    import jax.numpy as jnp

    x = jnp.asarray(x)
    v = jnp.asarray(directions, dtype=x.dtype)
    first = jax.grad(lambda z: jnp.sum(fn(z)))
    return np.asarray(jax.grad(lambda z: jnp.sum(first(z) * v))(x))


def _torch_gradient(fn, x):
    import torch

    x = keras.ops.convert_to_tensor(np.asarray(x)).detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(fn(x).sum(), x)
    return grad.detach().cpu().numpy()


def _torch_hessian_rows(fn, x, directions):
    import torch

    x = keras.ops.convert_to_tensor(np.asarray(x)).detach().requires_grad_(True)
    v = torch.as_tensor(np.asarray(directions), dtype=x.dtype, device=x.device)
    (grad,) = torch.autograd.grad(fn(x).sum(), x, create_graph=True)
    (rows,) = torch.autograd.grad((grad * v).sum(), x)
    return rows.detach().cpu().numpy()


_BACKENDS = {
    "tensorflow": (_tf_gradient, _tf_hessian_rows),
    "jax": (_jax_gradient, _jax_hessian_rows),
    "torch": (_torch_gradient, _torch_hessian_rows),
}


def _functions():
    backend = keras.backend.backend()
    if backend not in _BACKENDS:
        raise ValueError(f"automatic differentiation for interpretation supports the backends "
                         f"{sorted(_BACKENDS)}; KERAS_BACKEND is {backend!r}.")
    return _BACKENDS[backend]
