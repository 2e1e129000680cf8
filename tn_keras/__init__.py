"""tn_keras: coarse-grained polynomial networks (TaylorNet) for Keras 3.

Paper: Xi-Ci Yang, Z. Y. Xie, Xiao-Tao Yang, "Exploring explicit coarse-grained structure in
artificial neural networks", Chinese Physics Letters 40, 020501 (2023), arXiv:2211.01779.

Sub-packages: ``layers`` (PolyCG, DilatedPolyCG, TaylorDense), ``datasets`` (offline-first
loaders), ``zoo`` (registered architectures and checkpoints), ``training``, ``export``
(SavedModel / TFLite / ONNX), ``distill`` (multi-level dataset distillation), ``interpret``
(exact expansions of whole models), ``figures`` (the paper's figures), ``artifacts`` (the one
manifest format).
"""
import importlib
import os
import sys

from tn_keras.version import __version__

# TensorFlow's cpu_feature_guard line is an INFO message that the first import below would print
# to every user's stderr. Hide INFO only, only when TensorFlow is not loaded yet (the level is
# read at its import) and only when the user has not chosen a level: TF_CPP_MIN_LOG_LEVEL=0
# brings it back. (oneDNN's notice is printed before any level applies; the CLI, which owns
# its process, discards it by importing TensorFlow with stderr closed: a library may not.)
if "tensorflow" not in sys.modules:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")

# The layers load eagerly: importing tn_keras registers them with Keras, so
# `keras.saving.load_model` finds PolyCG & co. in any .keras file without custom_objects.
from tn_keras import layers  # noqa: E402

_SUBPACKAGES = ("datasets", "zoo", "training", "export", "distill", "interpret", "figures",
                "artifacts")


def __getattr__(name):
    # The other sub-packages load on first use: `import tn_keras` stays light (no dataset
    # registry, zoo or tf.data code until something needs it).
    if name == "export":
        return _import_export()
    if name in _SUBPACKAGES:
        return importlib.import_module(f"tn_keras.{name}")
    raise AttributeError(f"module 'tn_keras' has no attribute {name!r}")


def _import_export():
    # SavedModel / TFLite are TensorFlow formats: the one sub-package that needs TensorFlow
    # under every backend says so instead of failing deep inside an import.
    try:
        return importlib.import_module("tn_keras.export")
    except ImportError as e:
        if "tensorflow" not in str(e):
            raise
        raise ModuleNotFoundError(
            "tn_keras.export writes TensorFlow formats (SavedModel, TFLite) and needs "
            "TensorFlow, which is not installed: pip install 'tn_keras[cpu]'. Everything else "
            f"in tn_keras runs without it under KERAS_BACKEND=jax or torch. ({e})",
            name="tensorflow") from e


def __dir__():
    return sorted(set(globals()) | set(_SUBPACKAGES))


__all__ = ["__version__", "layers", *_SUBPACKAGES]
