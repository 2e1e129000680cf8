"""Finding and reading dataset files in a folder: npz, idx ``.gz`` and the CIFAR-10 tarball.

Nothing here writes to the data folder: archives are read member by member in memory.
"""
from __future__ import annotations

import gzip
import hashlib
import io
import os
import pickle
import tarfile
import zipfile
import zlib

import numpy as np

from tn_keras.datasets.errors import DatasetFormatError
from tn_keras.datasets.validation import ARRAY_KEYS
from tn_keras.utils.files import check_regular_file

IDX_FILES = {
    "x_train": "train-images-idx3-ubyte.gz",
    "y_train": "train-labels-idx1-ubyte.gz",
    "x_test": "t10k-images-idx3-ubyte.gz",
    "y_test": "t10k-labels-idx1-ubyte.gz",
}

# md5 of the *uncompressed* official idx files, as published with MNIST / Fashion-MNIST. We
# hash the decompressed bytes, not the .gz, because redistributions (e.g. Debian) recompress
# the archives with identical contents. Checked only for files whose header has the official
# size (60000 or 10000 items of 28x28), so subsets and test fixtures get structural checks.
_IDX_MD5 = {
    "mnist": {
        "x_train": "6bbc9ace898e44ae57da46a324031adb",
        "y_train": "a25bea736e30d166cdddb491f175f624",
        "x_test": "2646ac647ad5339dbf082846283269ea",
        "y_test": "27ae3e4e09519cfbb04c329615203637",
    },
    "fashion_mnist": {
        "x_train": "f4a8712d7a061bf5bd6d2ca38dc4d50a",
        "y_train": "9018921c3c673c538a1fc5bad174d6f9",
        "x_test": "8181f5470baa50b63fa0f6fddb340f0a",
        "y_test": "15d484375f8d13e6eb1aabb0c3f46965",
    },
}
_IDX_OFFICIAL_COUNT = {"x_train": 60000, "y_train": 60000, "x_test": 10000, "y_test": 10000}

CIFAR10_ARCHIVE = "cifar-10-python.tar.gz"
# md5 published by the CIFAR-10 authors on https://www.cs.toronto.edu/~kriz/cifar.html. The
# sha256 of this archive is not published there, so we do not hard-code one. The md5 is
# checked when the file has the official archive's size; other archives (repacked or test
# fixtures) get structural validation only.
_CIFAR10_MD5 = "c58f30108f718f92721af3b95e74349a"
_CIFAR10_ARCHIVE_SIZE = 170498071
_CIFAR10_MEMBERS = {
    "train": [f"cifar-10-batches-py/data_batch_{i}" for i in range(1, 6)],
    "test": ["cifar-10-batches-py/test_batch"],
}

# Pickle can run arbitrary code; the CIFAR batches only need numpy's array reconstructors
# (plus _codecs.encode, which Python 3 protocol-2 pickles use to store bytes).
_PICKLE_ALLOWED = {
    ("_codecs", "encode"),
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
    ("numpy", "ndarray"), ("numpy", "dtype"),
}

# Errors that a truncated or corrupt archive raises while being read.
_ARCHIVE_ERRORS = (
    OSError, EOFError, zlib.error, zipfile.BadZipFile, tarfile.TarError, pickle.UnpicklingError,
)


def is_data_file(path: str) -> bool:
    """True for a regular file (or a link to one), False when nothing is at ``path``.

    Raises:
        DatasetFormatError: something else is there: a folder, a FIFO or device (reading it
            could block forever), or a symbolic link to nothing.
    """
    if not os.path.lexists(path):
        return False
    try:
        check_regular_file(path, "data file")
    except OSError as e:
        raise DatasetFormatError(f"{e.filename}: {e.strerror}.") from e
    except ValueError as e:
        raise DatasetFormatError(str(e)) from e
    return True


def npz_path(folder: str, name: str) -> str:
    """Path of ``<folder>/<name>.npz``."""
    return os.path.join(folder, f"{name}.npz")


def idx_candidates(folder: str, name: str) -> list[str]:
    """Folders that may hold the four idx ``.gz`` files, most specific first.

    MNIST and Fashion-MNIST share file names, so the ``<name>/`` subfolder is preferred; in
    the folder itself the checksums tell the two apart for the official files.
    """
    return [os.path.join(folder, name), folder]


def cifar_archive_candidates(folder: str) -> list[str]:
    """Possible locations of the official CIFAR-10 python tarball."""
    return [os.path.join(folder, CIFAR10_ARCHIVE), os.path.join(folder, "cifar10", CIFAR10_ARCHIVE)]


def read_npz(path: str) -> dict[str, np.ndarray]:
    """Reads the `ARRAY_KEYS` (and ``test_is_lossless`` if present) from an npz file.

    Raises:
        DatasetFormatError: If the file is not a readable npz or lacks a required key.
    """
    try:
        check_npz_headers(path)  # before np.load allocates what a header declares
        with np.load(path, allow_pickle=False) as data:
            missing = [k for k in ARRAY_KEYS if k not in data.files]
            if missing:
                raise DatasetFormatError(
                    f"{path}: missing key(s) {missing}; found {sorted(data.files)}, "
                    f"expected {list(ARRAY_KEYS)}."
                )
            keys = list(ARRAY_KEYS) + [k for k in ("test_is_lossless",) if k in data.files]
            return {k: data[k] for k in keys}
    except DatasetFormatError:
        raise
    except (*_ARCHIVE_ERRORS, ValueError) as e:
        raise DatasetFormatError(f"{path}: not a readable npz archive ({e}).") from e


def check_npz_headers(path: str) -> None:
    """Refuses an npz whose members declare more (or fewer) bytes than they hold.

    Each ``.npy`` header inside the zip is read with ``numpy.lib.format`` and its shape x
    itemsize is compared with the member's size before anything is allocated, so a
    hand-made header cannot make ``np.load`` allocate terabytes.

    Raises:
        DatasetFormatError: a size mismatch, an object (pickle) array or a bad header.
    """
    with zipfile.ZipFile(path) as archive:
        for member in archive.infolist():
            if not member.filename.endswith(".npy"):
                continue
            with archive.open(member) as f:
                try:
                    version = np.lib.format.read_magic(f)
                    read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                                   else np.lib.format.read_array_header_2_0)
                    shape, _, dtype = read_header(f)
                except ValueError as e:
                    raise DatasetFormatError(
                        f"{path}: member {member.filename} has a bad .npy header ({e}).") from e
                held = member.file_size - f.tell()
            if dtype.hasobject:
                raise DatasetFormatError(f"{path}: member {member.filename} is an object "
                                         "array (pickled Python objects), which is refused.")
            declared = int(np.prod(shape, dtype=object)) * dtype.itemsize
            if declared != held:
                raise DatasetFormatError(
                    f"{path}: member {member.filename} declares shape {shape} of {dtype} "
                    f"({declared} bytes) but holds {held} bytes.")


def read_idx_gz(path: str) -> tuple[np.ndarray, bytes]:
    """Parses a gzip-compressed idx file of unsigned bytes.

    Returns:
        The array and the uncompressed bytes (for checksum verification).

    Raises:
        DatasetFormatError: On gzip errors, a bad magic number, or a size that does not match
            the header.
    """
    try:
        with gzip.open(path, "rb") as f:
            raw = f.read()
    except _ARCHIVE_ERRORS as e:
        raise DatasetFormatError(f"{path}: corrupt or truncated gzip file ({e}).") from e
    # idx magic: two zero bytes, type code 0x08 (unsigned byte), number of dimensions.
    if len(raw) < 4 or raw[:3] != b"\x00\x00\x08" or raw[3] not in (1, 3):
        raise DatasetFormatError(
            f"{path}: bad idx magic {raw[:4].hex() or '(empty)'}, expected 00000801 (labels) "
            "or 00000803 (images)."
        )
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DatasetFormatError(f"{path}: idx header truncated ({len(raw)} bytes).")
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    expected = header + int(np.prod(shape))
    if len(raw) != expected:
        raise DatasetFormatError(
            f"{path}: idx header declares shape {shape} ({expected} bytes) but the file has "
            f"{len(raw)} bytes."
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape), raw


def read_idx_folder(folder: str, name: str) -> dict[str, np.ndarray]:
    """Reads the four idx ``.gz`` files of ``name`` from ``folder``.

    Official-size files are verified against the published md5 of their contents.

    Raises:
        DatasetFormatError: On a corrupt file or a checksum mismatch.
    """
    arrays = {}
    for key, filename in IDX_FILES.items():
        path = os.path.join(folder, filename)
        array, raw = read_idx_gz(path)
        if _is_official_size(key, array):
            _verify_idx_md5(path, key, name, hashlib.md5(raw).hexdigest())
        arrays[key] = array
    return arrays


def _is_official_size(key: str, array: np.ndarray) -> bool:
    return len(array) == _IDX_OFFICIAL_COUNT[key] and array.shape[1:] in ((), (28, 28))


def _verify_idx_md5(path: str, key: str, name: str, digest: str) -> None:
    if name in _IDX_MD5 and digest == _IDX_MD5[name][key]:
        return
    for other, sums in _IDX_MD5.items():
        if digest == sums[key]:
            raise DatasetFormatError(
                f"{path}: this is the {other!r} file, not {name!r}; put each dataset's idx "
                f"files in its own subfolder (<data_dir>/{name}/)."
            )
    expected = _IDX_MD5.get(name, {}).get(key, "(unknown)")
    raise DatasetFormatError(
        f"{path}: md5 of the uncompressed contents is {digest}, expected the published "
        f"{expected}; the file is corrupt."
    )


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickler that refuses everything except numpy array reconstruction."""

    def find_class(self, module: str, name: str):
        if (module, name) in _PICKLE_ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")


def read_cifar10_archive(path: str) -> dict[str, np.ndarray]:
    """Reads the official ``cifar-10-python.tar.gz`` without extracting it to disk.

    The batches are Python pickles written by Python 2, so they are unpickled with
    ``encoding="bytes"`` (dict keys such as ``b"data"``), restricted to numpy objects.

    Raises:
        DatasetFormatError: On tar/gzip/pickle errors, a missing batch, malformed batch
            contents, or an md5 mismatch of an official-size archive.
    """
    if os.path.getsize(path) == _CIFAR10_ARCHIVE_SIZE:
        digest = _file_md5(path)
        if digest != _CIFAR10_MD5:
            raise DatasetFormatError(
                f"{path}: md5 is {digest}, expected the published {_CIFAR10_MD5}; the archive "
                "is corrupt."
            )
    arrays = {}
    try:
        with tarfile.open(path, "r:gz") as tar:
            for split, members in _CIFAR10_MEMBERS.items():
                xs, ys = [], []
                for member in members:
                    try:
                        f = tar.extractfile(member)
                    except KeyError:
                        f = None
                    if f is None:
                        raise DatasetFormatError(f"{path}: archive has no member {member!r}.")
                    x, y = _parse_cifar_batch(path, member, _NumpyOnlyUnpickler(
                        io.BytesIO(f.read()), encoding="bytes").load())
                    xs.append(x)
                    ys.append(y)
                arrays[f"x_{split}"] = np.concatenate(xs)
                arrays[f"y_{split}"] = np.concatenate(ys)
    except DatasetFormatError:
        raise
    except _ARCHIVE_ERRORS as e:
        raise DatasetFormatError(f"{path}: corrupt or truncated archive ({e}).") from e
    return arrays


def _parse_cifar_batch(path: str, member: str, batch: object) -> tuple[np.ndarray, np.ndarray]:
    if not isinstance(batch, dict) or b"data" not in batch or b"labels" not in batch:
        raise DatasetFormatError(f"{path}:{member}: expected a dict with b'data' and b'labels'.")
    data, labels = np.asarray(batch[b"data"]), np.asarray(batch[b"labels"])
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise DatasetFormatError(
            f"{path}:{member}: data has dtype {data.dtype} and shape {data.shape}, expected "
            "uint8 (N, 3072)."
        )
    if labels.shape != (len(data),):
        raise DatasetFormatError(
            f"{path}:{member}: {len(data)} images but labels have shape {labels.shape}."
        )
    # Rows are channel-major (1024 R, 1024 G, 1024 B); convert to HWC.
    return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), labels


def _file_md5(path: str) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
