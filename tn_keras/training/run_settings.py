"""Process-wide settings a training run needs, switched on for that run and restored after.

Deterministic ops and the dtype policy are global switches of the backend and of Keras. A
library that leaves them changed changes every later computation in the user's process (issue
#16), so each is a context manager that puts back what it found.
"""
import contextlib
import os

import keras

from tn_keras.utils import tensorflow_internals

MIXED_PRECISION_POLICY = "mixed_bfloat16"  # bfloat16 compute, float32 variables.


@contextlib.contextmanager
def deterministic_ops():
    """Deterministic kernels for the run, where the backend has a switch for them.

    TensorFlow: ``enable_op_determinism``. PyTorch: ``use_deterministic_algorithms`` (warning
    where an op has no deterministic kernel). JAX on
    CPU is deterministic already; on GPU set ``XLA_FLAGS=--xla_gpu_deterministic_ops=true``
    before JAX starts (XLA reads it once, so no library can scope it).
    """
    backend = keras.backend.backend()
    if backend == "tensorflow":
        with _tensorflow_determinism():
            yield
    elif backend == "torch":
        with _torch_determinism():
            yield
    else:
        yield


@contextlib.contextmanager
def _torch_determinism():
    import torch  # The backend is torch: already imported by Keras.

    previous = (torch.are_deterministic_algorithms_enabled(),
                torch.is_deterministic_algorithms_warn_only_enabled())
    # warn_only: an op without a deterministic kernel warns instead of stopping the run. On
    # CUDA, deterministic cuBLAS needs this workspace setting, read when cuBLAS starts.
    if torch.cuda.is_available():
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(previous[0], warn_only=previous[1])


@contextlib.contextmanager
def _tensorflow_determinism():
    import tensorflow as tf

    # TensorFlow's public API can switch determinism on but not read or undo it.
    previous = tensorflow_internals.op_determinism_enabled()
    tf.config.experimental.enable_op_determinism()
    try:
        yield
    finally:
        if not previous:
            tensorflow_internals.disable_op_determinism()


@contextlib.contextmanager
def dtype_policy(mixed_precision):
    """``mixed_bfloat16`` for models built inside when ``mixed_precision``; the global policy is
    restored after (the saved model keeps each layer's policy)."""
    if not mixed_precision:
        yield
        return
    previous = keras.mixed_precision.dtype_policy()
    keras.mixed_precision.set_dtype_policy(MIXED_PRECISION_POLICY)
    try:
        yield
    finally:
        keras.mixed_precision.set_dtype_policy(previous)
