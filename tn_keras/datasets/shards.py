"""Datasets as compressed, checksummed shards: how data reaches a machine without TensorFlow.

This module reads and writes the format; `tn_keras.datasets.packing` packs a dataset as
`tn_keras.datasets.load` finds it (it imports the loader, which imports this module: imports
run one way). ``tn-keras data pack NAME --out DIR --max-shard-mb N`` writes
``DIR/<NAME>.shards/``::

    index.json                    what the shards hold and the sha256 of each
    x_train-00000.zlib ...        rows [start, stop) of one array, each file <= N MB

and `tn_keras.datasets.load` reads such a folder when ``data_dir`` / ``TN_KERAS_DATA`` is
``DIR`` (or the shard folder itself). Every array of the dataset is packed (all splits, and
CIFAR-10's ``test_is_lossless`` mask), so loading from shards gives byte-identical arrays.

Codecs (`tn_keras.datasets.codecs`, standard library only, so the receiving machine needs no
package): ``zlib`` (the default; fast) or ``image-lzma`` (``--codec image-lzma``: a reversible
prediction step and LZMA; natural images shrink to about 55 % where zlib keeps about 90 %,
which matters when every megabyte travels). A shard is its rows encoded by the codec (dtype
and shape in the index); "MB" is 10^6 bytes.

Each shard's sha256 is checked before it is decompressed, and its decompressed length against
the index; a missing or damaged shard raises `DatasetFormatError` naming it.
"""
from __future__ import annotations

import datetime
import json
import os

import numpy as np

from tn_keras.datasets.codecs import CODECS
from tn_keras.datasets.codecs import DEFAULT_CODEC
from tn_keras.datasets.errors import DatasetFormatError
from tn_keras.utils.files import atomic_directory
from tn_keras.utils.files import atomic_write_json
from tn_keras.utils.files import sha256_file

FORMAT = "tn_keras.datasets.shards"
FORMAT_VERSION = 1
INDEX_NAME = "index.json"
SUFFIX = ".shards"
#: Shard file suffix of each codec.
SUFFIXES = {"zlib": "zlib", "image-lzma": "xz"}
MEGABYTE = 10**6


def shard_folder(data_dir: str, name: str) -> str:
    """``<data_dir>/<name>.shards``: where `pack` writes and `find` looks."""
    return os.path.join(data_dir, f"{name}{SUFFIX}")


def find(folder: str, name: str) -> str | None:
    """The index file of ``name``'s shards in ``folder`` (``<folder>/<name>.shards/`` or
    ``folder`` itself), or None."""
    index = os.path.join(shard_folder(folder, name), INDEX_NAME)
    if os.path.isfile(index):
        return index  # A damaged index here is an error `read` reports, not a reason to skip.
    index = os.path.join(folder, INDEX_NAME)
    try:
        return index if _read_index(index).get("dataset") == name else None
    except DatasetFormatError:
        return None  # No index, or some other program's index.json: not a shard folder.


def write(arrays: dict[str, np.ndarray], name: str, out: str, max_shard_mb: float,
          overwrite: bool = False, codec: str = DEFAULT_CODEC) -> str:
    """Writes ``arrays`` (dataset ``name``'s, keyed ``x_train``, ...) as shards into
    ``<out>/<name>.shards/``, each shard at most ``max_shard_mb`` MB once encoded.

    The folder is written under a temporary name and renamed when complete; an existing one
    is refused unless ``overwrite``. ``codec`` is a name in `tn_keras.datasets.codecs.CODECS`.
    `tn_keras.datasets.packing.pack` writes a dataset as `tn_keras.datasets.load` finds it.

    Returns:
        The path of the index file.
    """
    check_write_options(max_shard_mb, codec)
    limit = int(max_shard_mb * MEGABYTE)
    target = shard_folder(out, name)
    with atomic_directory(target, overwrite=overwrite) as tmp:
        entries = {key: _write_array(tmp, key, array, limit, codec) for key, array in arrays.items()}
        atomic_write_json(os.path.join(tmp, INDEX_NAME), {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "dataset": name,
            "codec": codec,
            "max_shard_bytes": limit,
            "arrays": entries,
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        })
    return os.path.join(target, INDEX_NAME)


def check_write_options(max_shard_mb: float, codec: str) -> None:
    """Refuse a shard size that is not positive, or an unknown codec (ValueError)."""
    if not max_shard_mb or max_shard_mb <= 0:
        raise ValueError(f"max_shard_mb must be positive; received {max_shard_mb!r}.")
    if codec not in CODECS:
        raise ValueError(f"codec must be one of {sorted(CODECS)}; received {codec!r}.")


def _write_array(folder: str, key: str, array: np.ndarray, limit: int, codec: str) -> dict:
    """Encodes ``array`` in row ranges whose encoded size is at most ``limit`` bytes."""
    array = np.ascontiguousarray(array)
    encode = CODECS[codec][0]
    row_bytes = max(1, array[:1].nbytes)
    rows = max(1, limit // row_bytes)  # first guess: raw size <= limit
    shards, start = [], 0
    while start < len(array) or not shards:
        stop = min(len(array), start + rows)
        data = encode(array[start:stop])
        if len(data) > limit:
            if stop - start == 1:
                raise ValueError(f"One row of {key} compresses to {len(data)} bytes, more than "
                                 f"max_shard_mb allows ({limit} bytes).")
            rows = max(1, int((stop - start) * 0.9 * limit / len(data)))
            continue
        filename = f"{key}-{len(shards):05d}.{SUFFIXES[codec]}"
        path = os.path.join(folder, filename)
        with open(path, "wb") as f:
            f.write(data)
        shards.append({"file": filename, "rows": [start, stop], "bytes": len(data),
                       "sha256": sha256_file(path)})
        if data and stop - start == rows:
            # Fill the next shard up to the limit at this shard's compression ratio.
            rows = max(1, int(rows * 0.95 * limit / len(data)))
        start = stop
    return {"dtype": array.dtype.str, "shape": list(array.shape), "shards": shards}


def read(index_path: str) -> dict[str, np.ndarray]:
    """The arrays of a shard folder, each shard verified (sha256, size) before it is used.

    Raises:
        DatasetFormatError: a shard is missing, damaged, or does not match the index.
    """
    index = _read_index(index_path)
    folder = os.path.dirname(index_path)
    decode = CODECS[index["codec"]][1]
    return {key: _read_array(folder, key, entry, decode)
            for key, entry in index["arrays"].items()}


def _read_array(folder: str, key: str, entry: dict, decode) -> np.ndarray:
    dtype, shape = np.dtype(entry["dtype"]), tuple(entry["shape"])
    out = np.empty(shape, dtype)
    flat = out.reshape(len(out), -1) if out.size else out
    for shard in entry["shards"]:
        path = _shard_path(folder, shard["file"])
        if not os.path.isfile(path):
            raise DatasetFormatError(f"{path}: shard missing (listed in {INDEX_NAME}); copy the "
                                     "whole shard folder again.")
        if sha256_file(path) != shard["sha256"]:
            raise DatasetFormatError(f"{path}: shard corrupted (sha256 differs from "
                                     f"{INDEX_NAME}); copy it again.")
        start, stop = shard["rows"]
        with open(path, "rb") as f:
            try:
                rows = decode(f.read(), dtype, (stop - start,) + shape[1:])
            except ValueError as e:  # a consistent sha256 but an index that disagrees
                raise DatasetFormatError(f"{path}: {e} (rows {start}..{stop} of the index)."
                                         ) from e
        flat[start:stop] = rows.reshape((stop - start,) + flat.shape[1:])
    return out


def _shard_path(folder: str, name) -> str:
    """``folder/name`` for a shard ``name`` of the index, which `pack` writes as a plain file
    name in the folder: a path that leaves it (``../outside.zlib``, an absolute path, a
    symbolic link out) is refused, so an index cannot make `read` open any file it names."""
    path = os.path.join(folder, name) if isinstance(name, str) else None
    inside = (path is not None and name not in ("", ".", "..") and os.path.basename(name) == name
              and "/" not in name and os.path.dirname(os.path.realpath(path))
              == os.path.realpath(folder))
    if not inside:
        raise DatasetFormatError(
            f"{os.path.join(folder, INDEX_NAME)}: shard file {name!r} is not a file name in "
            "the shard folder; an index names its shards as plain file names beside it.")
    return path


def _read_index(path: str) -> dict:
    try:
        with open(path, encoding="utf-8") as f:
            index = json.load(f)
    except (OSError, ValueError) as e:
        raise DatasetFormatError(f"{path}: unreadable shard index ({e}).") from e
    if index.get("format") != FORMAT or index.get("format_version") != FORMAT_VERSION:
        raise DatasetFormatError(f"{path}: not a {FORMAT} index of version {FORMAT_VERSION}.")
    if index.get("codec") not in CODECS:
        raise DatasetFormatError(f"{path}: unknown codec {index.get('codec')!r}.")
    return index
