"""Quiet by default: the CLI prints its own output, and tn_keras's warnings as one line each.

TensorFlow's C++ start-up lines are silenced before TensorFlow is imported, by the console
script (``tn_keras_cli.py`` at the top of the source tree). What is left to do once imported:
the Python loggers of TensorFlow and absl, and Python warnings. Third-party warnings (Keras,
NumPy, PIL, ...) are dropped; a warning raised from tn_keras's own code is shown as
``tn-keras: warning: <message>``. ``--verbose`` keeps everything as the libraries print it.
"""
import contextlib
import logging
import os
import sys
import warnings

_PACKAGE_DIRS = None


def _package_dirs():
    global _PACKAGE_DIRS
    if _PACKAGE_DIRS is None:
        import tn_keras
        from tn_keras import zoo

        _PACKAGE_DIRS = tuple(os.path.dirname(os.path.abspath(m.__file__)) + os.sep
                              for m in (tn_keras, zoo))
    return _PACKAGE_DIRS


def _show_ours(message, category, filename, lineno, file=None, line=None):
    if not os.path.abspath(filename).startswith(_package_dirs()):
        return
    text = " ".join(str(message).split())
    print(f"tn-keras: warning: {text}", file=sys.stderr)


def silence_loggers():
    """TensorFlow's and absl's Python loggers: errors only."""
    for name in ("tensorflow", "absl", "h5py"):
        logging.getLogger(name).setLevel(logging.ERROR)
    with contextlib.suppress(ImportError):
        from absl import logging as absl_logging

        absl_logging.set_verbosity(absl_logging.ERROR)


@contextlib.contextmanager
def quiet_unless(verbose):
    """Inside the block: loggers silenced and third-party warnings dropped, unless verbose."""
    if verbose:
        yield
        return
    silence_loggers()
    with warnings.catch_warnings():
        warnings.simplefilter("default")
        warnings.showwarning = _show_ours
        yield
