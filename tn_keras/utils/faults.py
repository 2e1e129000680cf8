"""Named kill points for the fault-injection tests (``tests/test_fault_injection.py``).

``fault_point("backup-write")`` does nothing unless ``$TN_KERAS_FAULT_POINT`` names that point;
then, after the first ``$TN_KERAS_FAULT_SKIP`` (default 0) passes, it creates the file
``$TN_KERAS_FAULT_SIGNAL`` (so the test knows the process got there) and blocks until the test
kills the process with SIGKILL. It lets a test stop a real run at an
exact moment (inside a backup write, between two renames) instead of guessing with timers.

With ``$TN_KERAS_FAULT_ERRNO`` set (a name such as ``ENOSPC``, or a number) the point raises
``OSError(errno, strerror)`` instead of blocking, as a plain ``write`` on a full disk does (no
file name): the tests check that a refused write there leaves the previous files intact and
ends as one line (`tn_keras.utils.write_errors`).
"""
import errno
import os
import time

POINT_ENV = "TN_KERAS_FAULT_POINT"
SIGNAL_ENV = "TN_KERAS_FAULT_SIGNAL"
SKIP_ENV = "TN_KERAS_FAULT_SKIP"
ERRNO_ENV = "TN_KERAS_FAULT_ERRNO"
_passes = {}


def fault_point(name):
    """Block forever here (or raise the `ERRNO_ENV` error) when the fault-injection
    environment names this point."""
    if os.environ.get(POINT_ENV) != name:
        return
    _passes[name] = _passes.get(name, 0) + 1
    if _passes[name] <= int(os.environ.get(SKIP_ENV, "0")):
        return
    code = os.environ.get(ERRNO_ENV)
    if code:
        number = int(code) if code.isdigit() else getattr(errno, code)
        raise OSError(number, os.strerror(number))
    signal = os.environ.get(SIGNAL_ENV)
    if signal:
        with open(signal, "w") as f:
            f.write(str(os.getpid()))
    while True:  # the test sends SIGKILL
        time.sleep(60)
