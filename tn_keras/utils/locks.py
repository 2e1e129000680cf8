"""Output locks: one run at a time writes a given output (a checkpoint folder, an export).

A lock is a small JSON file beside the output, ``.<name>.lock``, holding the owner's pid, host,
start time and command. It sits beside the output rather than inside it, so that the output
itself can be replaced by an atomic rename while the lock is held. The lock is keyed on the
*resolved* path of the output: ``--out o`` and ``--out L`` with ``L -> o`` share one lock.

What makes a lock held is not the file but an OS lock on it (``fcntl.flock``), taken on the
open file and kept until the owner releases it or dies: the kernel drops it with the process,
so a killed run (``kill -9``, a power cut) can never leave a lock that blocks. The file may
outlive its owner; the next run then takes it over and says so on one line of stderr.

A second run on a locked output fails at once with `OutputLockedError`, naming the owner.
Two cases are still refused although nobody holds the OS lock:

- the file names a pid on this host that is still running (a run of an older tn_keras, which
  locked by the file's existence only; or a reused pid, which the message tells how to clear);
- the file names another host: on a network file system the OS lock may not reach from there,
  and that host's pids cannot be checked from here, so the lock is reported, never broken.
"""
import contextlib
import datetime
import fcntl
import json
import os
import socket
import sys

from tn_keras.utils.write_errors import refused_writes


class OutputLockedError(RuntimeError):
    """Another live run holds the lock of this output."""


class StaleLockError(OutputLockedError):
    """Kept for callers that catch it: a dead owner's lock is now taken over, never raised."""


# {lock file path: open file descriptor holding its flock}, for `release`.
_HELD = {}


def lock_path(target):
    """The lock file of ``target`` (a file or folder): ``<parent>/.<basename>.lock``, where
    ``target`` is resolved first (symbolic links, ``..``), so every spelling shares one lock."""
    target = os.path.realpath(os.path.abspath(os.fspath(target)).rstrip(os.sep) or os.sep)
    return os.path.join(os.path.dirname(target), f".{os.path.basename(target)}.lock")


def _pid_running(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, under another user
        return True
    except (OverflowError, ValueError):  # not a pid at all
        return False
    return True


def read_lock(path):
    """The owner record of the lock file ``path`` (``{}`` when unreadable or empty)."""
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
            and not isinstance(pid, bool) and not _pid_running(pid))


def _describe(owner):
    return (f"pid {owner.get('pid', '?')} on host {owner.get('host', '?')}, started "
            f"{owner.get('started', '?')}: {owner.get('command', '?')}")


def _open_locked(path, target):
    """Open ``path`` (created if missing) and take its flock; returns the descriptor.

    Raises OutputLockedError when a live process holds the flock. A lock file that its owner
    removed between our ``open`` and our ``flock`` is not the lock any more (the next run makes
    a new file): then start again on the current file.
    """
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:  # the output's folder is not writable (or not a folder)
            raise type(e)(e.errno, f"{e.strerror} (creating the lock file of {target})",
                          path) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise _locked_error(target, path, read_lock(path)) from None
        except OSError:
            os.close(fd)
            raise
        try:
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if same:
            return fd
        os.close(fd)


def _read_fd(fd):
    os.lseek(fd, 0, os.SEEK_SET)
    chunks = []
    while chunk := os.read(fd, 65536):
        chunks.append(chunk)
    try:
        owner = json.loads(b"".join(chunks).decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return {}
    return owner if isinstance(owner, dict) else {}


def acquire(target, command=None):
    """Take the lock of ``target``; returns the lock file's path.

    A lock file left by a run that is no longer running on this host is taken over, with one
    line on stderr saying so.

    Raises:
        OutputLockedError: another run holds it (live, or recorded on another host).
    """
    path = lock_path(target)
    parent = os.path.dirname(path)
    if os.path.exists(parent) and not os.path.isdir(parent):
        raise NotADirectoryError(f"{parent} is a file, so {target} cannot be written.")
    os.makedirs(parent, exist_ok=True)
    fd = _open_locked(path, target)
    try:
        previous = _read_fd(fd)
        if previous and not is_stale(previous):
            # Live on this host (unlocked: an older tn_keras), or another host's: not ours.
            raise _locked_error(target, path, previous)
        if previous:
            print(f"tn_keras: took over the lock {path} of {target}, left by a run that is no "
                  f"longer running ({_describe(previous)})", file=sys.stderr, flush=True)
        owner = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started": datetime.datetime.now(datetime.timezone.utc).isoformat(
                timespec="seconds"),
            "command": command or " ".join(sys.argv),
        }
        data = json.dumps(owner).encode("utf-8")
        with refused_writes(path):  # a full disk: one line naming the lock file
            os.ftruncate(fd, 0)
            os.pwrite(fd, data, 0)
            os.fsync(fd)
    except BaseException:
        os.close(fd)  # drops the flock; the file stays for its owner (or is rewritten later)
        raise
    _HELD[path] = fd
    return path


def _locked_error(target, path, owner):
    if owner.get("host") not in (None, socket.gethostname()):
        return OutputLockedError(
            f"{target} is locked by a run on another host ({_describe(owner)}); its pid "
            f"cannot be checked from here. If that run is gone, delete {path}.")
    return OutputLockedError(
        f"{target} is being written by another run ({_describe(owner)}); wait for it to "
        f"finish or choose another output. If that run is gone, delete {path}.")


def release(path):
    """Remove a lock file this process holds and drop its flock (another's is left alone)."""
    fd = _HELD.pop(path, None)
    if fd is None:
        if read_lock(path).get("pid") in (None, os.getpid()) and _unheld(path):
            with contextlib.suppress(FileNotFoundError):
                os.remove(path)
        return
    try:
        # Removed while still flocked: a run waiting on this file sees it is gone and retries.
        with contextlib.suppress(FileNotFoundError):
            os.remove(path)
    finally:
        os.close(fd)


def _unheld(path):
    """True when no process holds the flock of ``path`` (checked by taking it briefly)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


def inspect(target):
    """Who holds the lock of ``target``, found without taking it and without writing anything.

    Returns ``(state, owner, path)``: ``owner`` is the lock file's record (``{}`` when none),
    ``path`` the lock file, and ``state`` what `acquire` would find:

    - ``"free"``: no lock file, or an empty one;
    - ``"running"``: a live run holds it (its OS lock is seen in Linux's ``/proc/locks``, or
      its pid on this host is running): `acquire` would refuse it;
    - ``"another host"``: recorded by another host, whose pids cannot be checked from here;
    - ``"left"``: a run that is no longer running left it; the next run takes it over.
    """
    path = lock_path(target)
    if not os.path.isfile(path):
        return "free", {}, path
    owner = read_lock(path)
    if path in _HELD or _flock_holders(path):
        return "running", owner, path
    if not owner:
        return "free", owner, path
    if owner.get("host") not in (None, socket.gethostname()):
        return "another host", owner, path
    # A live pid on this host without the OS lock (an older tn_keras): acquire refuses it too.
    return ("left" if is_stale(owner) else "running"), owner, path


def _flock_holders(path):
    """The pids holding an OS lock on the file ``path``, from Linux's ``/proc/locks`` (read
    only; ``[]`` where that table cannot be read, or the file is gone)."""
    try:
        stat = os.stat(path)
        with open("/proc/locks", encoding="ascii", errors="replace") as f:
            table = f.read()
    except OSError:
        return []
    key = f"{os.major(stat.st_dev):02x}:{os.minor(stat.st_dev):02x}:{stat.st_ino}"
    pids = []
    for line in table.splitlines():
        # "1: FLOCK  ADVISORY  WRITE 2456 fd:01:1835011 0 EOF"; a waiting request has "->".
        fields = line.split()
        if len(fields) >= 6 and fields[1] == "FLOCK" and fields[5] == key and \
                fields[4].isdigit():
            pids.append(int(fields[4]))
    return pids


@contextlib.contextmanager
def locked(target, command=None):
    """Hold the lock of ``target`` for the ``with`` block (released on any exit; a kill drops
    the OS lock, and the next run takes the file over)."""
    path = acquire(target, command)
    try:
        yield path
    finally:
        release(path)
