"""TensorFlow's start-up lines, kept off a user's stderr (standard library only).

Importing TensorFlow prints lines from its C++ libraries while they load (oneDNN's notice,
the CPU-feature line, absl's "before InitializeLog" banner), before any Python logger or log
level applies. Both entry points discard them the same way, by importing TensorFlow once
with file descriptor 2 sent to /dev/null: the console script (`tn_keras_cli`, which also sets
the C++ log level to 3) and ``import tn_keras`` (when the user has chosen no
``TF_CPP_MIN_LOG_LEVEL``; ``TF_CPP_MIN_LOG_LEVEL=0`` keeps every line).

This module imports nothing outside the standard library: it runs before Keras is imported.
"""
import importlib.util
import json
import os
import sys


def keras_backend() -> str:
    """The backend Keras will load, found as Keras finds it (``KERAS_BACKEND``, then the
    ``backend`` of ``$KERAS_HOME/keras.json`` or ``~/.keras/keras.json``), without importing it."""
    backend = os.environ.get("KERAS_BACKEND")
    if backend:
        return backend
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    try:
        with open(os.path.join(home, "keras.json"), encoding="utf-8") as f:
            return json.load(f).get("backend") or "tensorflow"
    except (OSError, ValueError, AttributeError):
        return "tensorflow"


def import_quietly():
    """Import TensorFlow with its start-up lines discarded (nothing when it is imported
    already or not installed). An import that fails is left to fail again, with its
    message, where TensorFlow is needed."""
    if "tensorflow" in sys.modules or importlib.util.find_spec("tensorflow") is None:
        return
    sys.stderr.flush()
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        import tensorflow  # noqa: F401
    except Exception:  # noqa: BLE001
        pass
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def quiet_library_import():
    """``import tn_keras``'s part: unless the user chose a C++ log level, hide INFO lines
    (level 1) and, under the TensorFlow backend, import TensorFlow quietly now rather than
    loudly inside Keras."""
    if "tensorflow" in sys.modules or "TF_CPP_MIN_LOG_LEVEL" in os.environ:
        return
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "1"
    if keras_backend() == "tensorflow":
        import_quietly()
