"""The ``tn-keras`` console script: silence TensorFlow's start-up lines, then run `tn_keras.cli`.

This module sits outside the ``tn_keras`` package on purpose. Importing anything from
``tn_keras`` imports Keras and TensorFlow (the layers register with Keras on import), and
TensorFlow's C++ libraries print their start-up lines (oneDNN, CPU features, the absl
"before InitializeLog" banner) while they load, before any log level applies. So the console
script sets the log levels and imports TensorFlow with file descriptor 2 sent to /dev/null
first; ``--verbose`` skips all of it. `tn_keras.cli.main` does the rest (Python warnings and
loggers) and is what tests call in-process.
"""
import importlib.util
import json
import os
import sys


def silence_tensorflow(import_now=True):
    """Quiet TensorFlow's C++ / absl logs; import it with its start-up lines discarded (when
    ``import_now``: the run would import it anyway)."""
    # C++ INFO, WARNING and ERROR lines (set, not defaulted: --verbose is the way to see them).
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    os.environ["GRPC_VERBOSITY"] = "ERROR"
    if not import_now or importlib.util.find_spec("tensorflow") is None:
        return
    sys.stderr.flush()
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        import tensorflow  # noqa: F401
    except Exception:  # noqa: BLE001  (it fails again, with its message, where it is needed)
        pass
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def keras_backend():
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


def loads_tensorflow(argv) -> bool:
    """Whether this run may import TensorFlow: always under its Keras backend (Keras imports
    it), and for every command (some read data or write exports with it) but ``--help`` and
    ``--version``, which under another backend load neither it nor Keras's TensorFlow parts."""
    only_help = not argv or bool({"-h", "--help", "--version"} & set(argv))
    return not only_help or keras_backend() == "tensorflow"


def main():
    argv = sys.argv[1:]
    if "--verbose" not in argv:
        silence_tensorflow(import_now=loads_tensorflow(argv))
    from tn_keras.cli import main as cli_main

    return cli_main(argv)


if __name__ == "__main__":
    sys.exit(main())
