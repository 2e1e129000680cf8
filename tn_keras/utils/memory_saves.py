"""Keras saves built in memory, then written to disk by plain Python writes.

``model.save_weights("x.weights.h5")`` lets HDF5 write the file itself. When the disk fills up
in the middle, HDF5 fails inside its C library: h5py prints one traceback per object it cannot
release (80-odd lines), ``close`` raises ``[Errno 28] Can't close file``, and the process may
then crash with a segmentation fault when the half-closed file is finalised (issue 27, measured
with ``tn-keras train`` on a 300 KiB tmpfs: 87 lines, exit 139). HDF5 writing into memory
cannot fail that way; the bytes are then written with ``open``/``write``/``fsync``, whose
failure is an ordinary ``OSError`` naming the file (see `tn_keras.utils.write_errors`).

Keras accepts an ``io.BytesIO`` as the target of its HDF5 store (``H5IOStore``, which ``.keras``
saving uses for its archive member) and of ``.keras`` saving; its public ``save_weights`` /
``save`` only check that ``str(target)`` has the right extension, which `_MemoryFile` gives.
Should a Keras release refuse it (TypeError / ValueError / AttributeError before writing
anything), the save goes to the path directly, as before. Memory cost: one copy of the file.
"""
import io
import os


class _MemoryFile(io.BytesIO):
    """An in-memory file whose ``str`` ends with the extension Keras checks (``.weights.h5``,
    ``.keras``) and names no path (Keras takes some prefixes, ``/gcs``, ``x://``, as remote)."""

    def __init__(self, extension):
        super().__init__()
        self._name = f"in-memory{extension}"

    def __str__(self):
        return self._name


def write_file(path, data):
    """Write ``data`` to ``path`` (created or truncated), flushed and fsynced before returning.

    A failure (a full disk surfaces in ``write``, ``flush`` or ``close``) is an ``OSError``
    naming ``path``.
    """
    try:
        with open(path, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    except OSError as e:
        if e.filename is None and e.errno is not None:
            raise type(e)(e.errno, e.strerror, os.fspath(path)) from e
        raise


def _in_memory(save, extension):
    """``save(target)`` into a `_MemoryFile`: its bytes, or None if Keras refused the target."""
    memory = _MemoryFile(extension)
    try:
        save(memory)
    except (TypeError, ValueError, AttributeError):
        return None  # not a file-like target in this Keras: the caller saves to the path
    return memory.getvalue()


def save_weights(model, path):
    """``model.save_weights(path)`` (a ``.weights.h5`` file, optimizer state included), with
    HDF5 writing into memory and ``path`` written by `write_file`."""
    data = _in_memory(model.save_weights, ".weights.h5")
    if data is None:
        model.save_weights(path, overwrite=True)
        with open(path, "rb+") as f:
            os.fsync(f.fileno())
    else:
        write_file(path, data)


def keras_file_bytes(model, scratch):
    """The bytes ``model.save("x.keras")`` would write, built in memory. ``scratch``: a
    ``.keras`` path to save to and read back if this Keras refuses the in-memory target."""
    data = _in_memory(model.save, ".keras")
    if data is None:
        model.save(scratch)
        with open(scratch, "rb") as f:
            data = f.read()
    return data
