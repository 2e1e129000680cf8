"""Safe file writing: nothing half-written is ever left under the final name.

Every writer here writes to a temporary name in the destination folder, flushes and fsyncs it,
then renames it over the final name (an atomic operation on POSIX file systems), so a crash or
an interrupt leaves either the old file or the complete new one. A write the file system
refuses (a full disk, a quota, a permission) removes the temporary and raises
`tn_keras.utils.write_errors.WriteRefusedError` naming the final path.
"""
import contextlib
import errno
import hashlib
import json
import os
import shutil
import tempfile

from tn_keras.utils.write_errors import refused_writes


def sha256_file(path, chunk_size=1 << 20):
    """The hex sha256 of a file, read in chunks (checkpoints can be large)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(chunk_size), b""):
            digest.update(chunk)
    return digest.hexdigest()


def check_can_write(path, overwrite):
    """Refuse to replace an existing file or folder unless ``overwrite`` is asked for.

    An empty path is refused too: ``os.path.exists("")`` is False while
    ``os.path.abspath("")`` is the working directory, so an export to ``""`` passed every
    check and then replaced the folder the user was working in.
    """
    if not os.fspath(path).strip():
        raise ValueError(f"The output path is empty ({os.fspath(path)!r}); name a file or "
                         "folder to write.")
    if os.path.exists(path) and not overwrite:
        raise FileExistsError(
            f"{path} already exists; pass overwrite=True (CLI: --overwrite) to replace it."
        )


@contextlib.contextmanager
def atomic_path(path, overwrite=True, suffix=None):
    """Yield a temporary path beside ``path``; on success rename it to ``path``.

    The temporary name keeps ``suffix`` (default: ``path``'s extension), since some writers
    (``keras.Model.save``) insist on a file extension. On an exception the temporary file is
    removed and ``path`` is untouched.
    """
    check_can_write(path, overwrite)
    folder = os.path.dirname(os.path.abspath(path))
    with refused_writes(path, paths=(folder,)):
        os.makedirs(folder, exist_ok=True)
        if suffix is None:
            suffix = os.path.splitext(path)[1]
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=suffix, dir=folder)
        os.close(fd)
        # mkstemp creates the file private (0600); give it the permissions of a new file.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
    try:
        # Inside the block, a permission error counts as the write's when it names tmp or path.
        with refused_writes(path, paths=(tmp,)):
            yield tmp
            if os.path.isdir(tmp):
                raise IsADirectoryError(tmp)
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
            os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)  # also gives back the space a full disk needs
        raise


def atomic_write_bytes(path, data, overwrite=True):
    with atomic_path(path, overwrite=overwrite) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)


def atomic_write_json(path, obj, overwrite=True):
    """Write ``obj`` as indented, key-sorted JSON (stable diffs for manifests)."""
    text = json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n"
    atomic_write_bytes(path, text.encode("utf-8"), overwrite=overwrite)


def temporary_folder(parent, prefix):
    """A new uniquely named folder in ``parent`` with the mode an ordinary ``mkdir`` gives
    (``tempfile.mkdtemp`` makes it private, 0700: a folder that is renamed into place to be
    shared, a checkpoint's or a distilled level's, must not stay so)."""
    folder = tempfile.mkdtemp(prefix=prefix, dir=parent)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(folder, 0o777 & ~umask)
    return folder


@contextlib.contextmanager
def atomic_directory(path, overwrite=False):
    """Yield a temporary folder beside ``path``; on success move it to ``path`` (with an
    ordinary folder's mode, as `temporary_folder` makes it).

    An existing ``path`` is refused unless ``overwrite``; then it is replaced only once the new
    folder is complete.
    """
    check_can_write(path, overwrite)
    parent = os.path.dirname(os.path.abspath(path))
    with refused_writes(path, paths=(parent,)):
        os.makedirs(parent, exist_ok=True)
        tmp = temporary_folder(parent, ".tmp-" + os.path.basename(path) + "-")
    try:
        with refused_writes(path, paths=(tmp,)):
            yield tmp
            if os.path.exists(path):
                old = tmp + ".old"
                os.replace(path, old)
                os.replace(tmp, path)
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _json_default(value):
    # NumPy scalars and arrays appear in manifests (accuracies, shapes).
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def check_regular_file(path, what="file"):
    """Refuse anything at ``path`` but a regular file (or a link to one), saying what it is.

    A folder, a FIFO (whose read blocks forever), a device or a link to nothing gets an error
    that says so, rather than "not found" or a hang.

    Raises:
        FileNotFoundError: nothing is at ``path``.
        IsADirectoryError: a folder.
        ValueError: a FIFO, socket or device, or a symbolic link to nothing.
    """
    path = os.fspath(path)
    if os.path.isfile(path):
        return path
    if os.path.islink(path) and not os.path.exists(path):
        raise ValueError(f"{path}: the {what} is a symbolic link to {os.readlink(path)!r}, "
                         "which does not exist.")
    if not os.path.lexists(path):
        raise FileNotFoundError(errno.ENOENT, f"no such {what}", path)
    if os.path.isdir(path):
        raise IsADirectoryError(errno.EISDIR, f"is a folder, expected a {what}", path)
    raise ValueError(f"{path}: the {what} is not a regular file (a FIFO, socket or device).")
