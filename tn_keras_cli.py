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
import os
import sys


def silence_tensorflow():
    """Quiet TensorFlow's C++ / absl logs; import it with its start-up lines discarded."""
    # C++ INFO, WARNING and ERROR lines (set, not defaulted: --verbose is the way to see them).
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    os.environ["GRPC_VERBOSITY"] = "ERROR"
    if importlib.util.find_spec("tensorflow") is None:
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


def main():
    argv = sys.argv[1:]
    if "--verbose" not in argv:
        silence_tensorflow()
    from tn_keras.cli import main as cli_main

    return cli_main(argv)


if __name__ == "__main__":
    sys.exit(main())
