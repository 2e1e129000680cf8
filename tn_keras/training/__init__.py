"""Training and evaluating zoo models with their recipes (``tn-keras train`` / ``evaluate``).

The names below load on first use (PEP 562): importing a light module of this package, such as
`tn_keras.training.optimizers`, which ``import tn_keras`` does to register the optimisers and
losses that saved checkpoints name, must not pull in the trainer, the datasets and the zoo.
No submodule shares a name with them: a submodule imported later would replace the function
of its name on the package (hence ``evaluation.py`` for ``evaluate``).
"""
import importlib

_LAZY = {"TrainConfig": "tn_keras.training.config", "evaluate": "tn_keras.training.evaluation",
         "evaluation_splits": "tn_keras.training.evaluation", "train": "tn_keras.training.trainer"}

__all__ = ["TrainConfig", "evaluate", "evaluation_splits", "train"]


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'tn_keras.training' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
