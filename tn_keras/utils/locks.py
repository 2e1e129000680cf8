"""Output locks: one run at a time writes a given output (a checkpoint folder, an export).

A lock is a small JSON file beside the output, ``.<name>.lock``, created atomically with
``O_CREAT | O_EXCL`` (exactly one of two racing runs creates it) and holding the owner's pid,
host, start time and command. It sits beside the output rather than inside it, so that the
output itself can be replaced by an atomic rename while the lock is held.

A second run on a locked output fails at once with `OutputLockedError`, naming the owner. A lock
left by a run that was killed (``kill -9``, a power cut) is *stale*: its host is this host and its
pid no longer runs. A stale lock is reported (`StaleLockError`, with the file to delete), never
taken over silently: a pid can be reused, and only the user knows that no other run uses the
output. Locks from another host are never judged stale (its pids cannot be checked from here).
"""
import contextlib
import datetime
import json
import os
import socket
import sys


class OutputLockedError(RuntimeError):
    """Another live run holds the lock of this output."""


class StaleLockError(OutputLockedError):
    """The lock's owner ran on this host and is no longer running (it was killed)."""


def lock_path(target):
    """The lock file of ``target`` (a file or folder): ``<parent>/.<basename>.lock``."""
    target = os.path.abspath(os.fspath(target)).rstrip(os.sep)
    return os.path.join(os.path.dirname(target), f".{os.path.basename(target)}.lock")


def _pid_running(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, under another user
        return True
    return True


def read_lock(path):
    """The owner record of the lock file ``path`` (``{}`` when unreadable: being written)."""
    try:
        with open(path, encoding="utf-8") as f:
            owner = json.load(f)
    except (OSError, ValueError):
        return {}
    return owner if isinstance(owner, dict) else {}


def is_stale(owner):
    """True when ``owner`` ran on this host and its pid is no longer running."""
    pid = owner.get("pid")
    return (owner.get("host") == socket.gethostname() and isinstance(pid, int)
            and not _pid_running(pid))


def _describe(owner):
    return (f"pid {owner.get('pid', '?')} on host {owner.get('host', '?')}, started "
            f"{owner.get('started', '?')}: {owner.get('command', '?')}")


def acquire(target, command=None):
    """Create the lock file of ``target``; returns its path.

    Raises:
        OutputLockedError: another run holds it (live, or on another host).
        StaleLockError: a killed run left it; the message says how to clear it.
    """
    path = lock_path(target)
    parent = os.path.dirname(path)
    if os.path.exists(parent) and not os.path.isdir(parent):
        raise NotADirectoryError(f"{parent} is a file, so {target} cannot be written.")
    os.makedirs(parent, exist_ok=True)
    owner = {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": command or " ".join(sys.argv),
    }
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        raise _locked_error(target, path) from None
    except OSError as e:  # the output's folder is not writable (or not a folder)
        raise type(e)(e.errno, f"{e.strerror} (creating the lock file of {target})",
                      path) from None
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(owner, f)
        f.flush()
        os.fsync(f.fileno())
    return path


def _locked_error(target, path):
    owner = read_lock(path)
    if is_stale(owner):
        return StaleLockError(
            f"{target} has a stale lock {path} left by a run that is no longer running "
            f"({_describe(owner)}). If no other run uses {target}, delete {path} and rerun "
            "(train: add --resume to continue from its last complete epoch).")
    return OutputLockedError(
        f"{target} is being written by another run ({_describe(owner)}); wait for it to "
        f"finish or choose another output. If that run is gone, delete {path}.")


def release(path):
    """Remove a lock file this process created (a lock of another pid is left alone)."""
    owner = read_lock(path)
    if owner.get("pid") not in (None, os.getpid()):
        return
    with contextlib.suppress(FileNotFoundError):
        os.remove(path)


@contextlib.contextmanager
def locked(target, command=None):
    """Hold the lock of ``target`` for the ``with`` block (released on any exit but a kill)."""
    path = acquire(target, command)
    try:
        yield path
    finally:
        release(path)
