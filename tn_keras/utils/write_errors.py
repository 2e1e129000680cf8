"""Writes the file system refused (a full disk, a quota, a permission, a read-only mount).

Such a failure surfaces in many shapes: Python's ``OSError(ENOSPC)`` from a plain write with no
file name, h5py's ``OSError`` wrapping an HDF5 error stack, TensorFlow's
``ResourceExhaustedError: <path>; No space left on device`` from its SavedModel writer. The
CLI must turn every one of them into exit code 3 and one line naming the file and the cause,
and say what is still intact (the writers here leave the previous checkpoint, backup or export
in place). `refused_writes` wraps a write and raises `WriteRefusedError` for all of them:

    with refused_writes(path, intact="the previous export is intact"):
        ...write path...

``str(error)`` is then ``no space left on device writing /x/m.tflite (the previous export is
intact)``. Imports nothing heavy: TensorFlow's errors are recognised by module and message.
"""
import contextlib
import errno
import os

# errno -> the cause as the one-line error says it. These mean "the file system refused the
# write"; other errors (a missing folder, a file where a folder is expected) are bad input.
REFUSED = {
    errno.ENOSPC: "no space left on device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EFBIG: "file too large",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.EROFS: "read-only file system",
    errno.EIO: "input/output error",
}
# A full disk or quota can only come from a write; the others can come from a read too, so
# they are taken as the write's only when the error names the written path (or no path).
_WRITE_ONLY = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}


class WriteRefusedError(OSError):
    """The file system refused to write ``filename`` (``errno``: one of `REFUSED`).

    ``intact`` says what the failed write left as it was (e.g. "the previous checkpoint is
    intact"); it is added to the message in parentheses.
    """

    intact = None

    def __str__(self):
        cause = REFUSED.get(self.errno) or (self.strerror or "").lower() or "refused"
        note = f" ({self.intact})" if self.intact else ""
        return f"{cause} writing {self.filename}{note}"


def refused_errno(error, paths=()):
    """The `REFUSED` errno behind ``error``, or None when it is something else.

    ``error`` is an ``OSError`` (h5py's included), or a TensorFlow ``OpError``, whose message
    ends with the C library's ``strerror`` text. A permission or I/O error counts only when it
    names no file or a file at or under one of ``paths`` (a dataset that cannot be read is not
    a refused write).
    """
    if isinstance(error, OSError) and error.errno in REFUSED:
        code, named = error.errno, error.filename
        if isinstance(named, (bytes, os.PathLike)):
            named = os.fsdecode(named)
        named = None if named is None else os.path.abspath(str(named))
        in_message = False
    elif (type(error).__module__ or "").startswith("tensorflow"):
        message = str(getattr(error, "message", "") or error)
        code = next((c for c in REFUSED if os.strerror(c) in message), None)
        named, in_message = message, True  # "<path>; Permission denied"
    else:
        return None
    if code is None or code in _WRITE_ONLY or named is None or not paths:
        return code
    for path in (os.path.abspath(os.fspath(p)) for p in paths):
        if (path in named) if in_message else (named == path
                                                 or named.startswith(path + os.sep)):
            return code
    return None


def refused(code, path, intact=None):
    """A `WriteRefusedError` for ``errno`` ``code`` on ``path``."""
    error = WriteRefusedError(code, os.strerror(code), os.fspath(path))
    error.intact = intact
    return error


@contextlib.contextmanager
def refused_writes(path, intact=None, paths=()):
    """Raise a refused write inside the block as one `WriteRefusedError` naming ``path``.

    Args:
        path: the file or folder the block writes (named in the message); None: the file the
            error itself names.
        intact: what the failure leaves intact, a string or a function returning one (called
            only on failure, so it can look at the files then).
        paths: further paths the block writes under (temporaries, a staging folder): a
            permission or I/O error naming them is the write's too.

    A `WriteRefusedError` raised further in keeps its (more precise) file and gets ``intact``
    when it has none; anything else passes unchanged.
    """
    try:
        yield
    except WriteRefusedError as e:
        if e.intact is None and intact is not None:
            e.intact = intact() if callable(intact) else intact
        raise
    except Exception as e:
        roots = [p for p in (path, *paths) if p is not None]
        code = refused_errno(e, roots)
        if code is None:
            raise
        named = path if path is not None else getattr(e, "filename", None)
        raise refused(code, named if named is not None else "?",
                      intact() if callable(intact) else intact) from e
