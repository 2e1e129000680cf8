"""Running a model in float64 on every Keras backend.

Interpretation wants float64: a degree-32 polynomial's orders are separated by solving an
ill-conditioned system, and the coefficients are compared with NumPy references. A model is
turned into a float64 copy by rebuilding it from its config with every layer's dtype set to
float64 and copying the weights (the config holds the Normalization statistics, the weights the
rest, BatchNormalization's moving statistics included).

JAX computes in float32 unless 64-bit types are enabled; `float64_scope` enables them with
``jax.enable_x64`` for the duration of the computation only (the copy must also be *built*
inside it, or its variables are created in float32). TensorFlow and PyTorch need nothing.
"""
from __future__ import annotations

import contextlib

import keras

DTYPES = ("float32", "float64")


def check_dtype(dtype):
    if dtype not in DTYPES:
        raise ValueError(f"dtype={dtype!r}: expected one of {DTYPES}.")
    return dtype


@contextlib.contextmanager
def float64_scope(enabled=True):
    """Within this block the backend computes in float64 when asked (JAX: ``enable_x64``)."""
    if enabled and keras.backend.backend() == "jax":
        import jax

        with jax.enable_x64(True):
            yield
    else:
        yield


def float64_available():
    """Whether the backend multiplies float64 matrices in float64.

    Keras 3.15's torch backend does not (``matmul`` of two float64 tensors returns float32),
    so a float64 copy of a model would silently compute in float32 there. Asked of the
    backend itself, so a Keras that fixes it is used as soon as it is installed.
    """
    import numpy as np

    with float64_scope():
        a = keras.ops.convert_to_tensor(np.eye(2), dtype="float64")
        return keras.backend.standardize_dtype(keras.ops.matmul(a, a).dtype) == "float64"


def _set_layer_dtypes(config, dtype):
    for layer in config.get("layers", []):
        layer_config = layer.get("config", {})
        if "dtype" in layer_config:
            layer_config["dtype"] = dtype
        if "layers" in layer_config:  # a nested functional model
            _set_layer_dtypes(layer_config, dtype)


def with_dtype(model, dtype):
    """``model`` itself for float32, else a float64 copy with the same weights.

    Call inside `float64_scope` on JAX.
    """
    check_dtype(dtype)
    if dtype == "float32":
        return model
    if not float64_available():
        raise ValueError(
            f"dtype='float64' is not available under the {keras.backend.backend()} backend: it "
            "multiplies float64 matrices in float32, so the result would silently lose "
            "precision. Use the JAX or TensorFlow backend, or dtype='float32'.")
    config = model.get_config()
    _set_layer_dtypes(config, dtype)
    clone = model.__class__.from_config(config)
    clone.set_weights(model.get_weights())
    return clone
