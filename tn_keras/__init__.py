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

from tn_keras.version import __version__

# TensorFlow's start-up lines (oneDNN, cpu_feature_guard) would reach every user's stderr at the
# first import below; unless the user chose a TF_CPP_MIN_LOG_LEVEL, they are discarded as the
# CLI discards them (`tn_keras.utils.tensorflow_banner`, standard library only).
from tn_keras.utils import tensorflow_banner  # noqa: E402

tensorflow_banner.quiet_library_import()

# The layers load eagerly: importing tn_keras registers them with Keras, so
# `keras.saving.load_model` finds PolyCG & co. in any .keras file without custom_objects.
from tn_keras import layers  # noqa: E402
# ... and so is `ZooModel`, the class `zoo.load` returns (raw pixels in, a warning for 0..1).
from tn_keras.zoo_model import ZooModel  # noqa: E402
# ... and the optimisers, schedules and losses that a checkpoint's compile config names (the
# fast recipe's ScaledSGD, TriangularSchedule, SparseSmoothedCrossentropy): without them a
# checkpoint trained with that recipe does not load in a fresh process.
from tn_keras.training import losses as _losses  # noqa: E402,F401
from tn_keras.training import optimizers as _optimizers  # noqa: E402,F401

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


__all__ = ["__version__", "layers", "ZooModel", *_SUBPACKAGES]
