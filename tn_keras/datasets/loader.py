"""`load`: the search order over sources, validation, and the in-process cache."""
from __future__ import annotations

import os
import threading
from typing import Callable

import numpy as np

from tn_keras.datasets import derived, keras_source, shards, sources, tfds_source
from tn_keras.datasets.errors import DatasetFormatError, DatasetNotFoundError
from tn_keras.datasets.registry import DatasetInfo, info
from tn_keras.datasets.validation import validate_arrays

DATA_ENV = "TN_KERAS_DATA"
OFFLINE_ENV = "TN_KERAS_OFFLINE"

# Validated, read-only arrays keyed by where they came from (resolved path + mtime + size for
# files), so a file replaced on disk is re-read while repeated loads cost nothing.
_CACHE: dict[tuple, dict[str, np.ndarray]] = {}
_CACHE_LOCK = threading.Lock()

Reader = Callable[[], dict]


def load(
    name: str,
    split: str = "train",
    data_dir: str | os.PathLike | None = None,
    offline: bool | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Loads one split of a dataset as numpy arrays.

    Sources are searched in this order, and the first one found is used:

    1. ``data_dir``, or if it is None the folder in ``$TN_KERAS_DATA``: ``<name>.npz`` with
       keys ``x_train, y_train, x_test, y_test``; or the original distribution files: the four
       MNIST / Fashion-MNIST idx ``.gz`` files in ``<folder>/<name>/`` or ``<folder>/``, or
       ``cifar-10-python.tar.gz`` in ``<folder>/`` or ``<folder>/cifar10/``. Official files
       are verified against the published md5 checksums.
    2. A prepared tensorflow-datasets folder (``$TFDS_DATA_DIR`` or ``~/tensorflow_datasets``),
       read with ``download=False``; tfds is never called when that folder is absent.
    3. ``keras.datasets.<name>.load_data()``, which downloads, unless offline (``offline=True``,
       or ``offline=None`` and ``$TN_KERAS_OFFLINE=1``).

    ``mnist7x7`` is derived from ``mnist`` found this way; ``digits`` ships inside
    scikit-learn and needs no files. A found file that is corrupt raises instead of falling
    through to the next source. Nothing is ever written into the data folder.

    Args:
        name: One of `names()`: ``"mnist"``, ``"fashion_mnist"``, ``"cifar10"``,
            ``"digits"``, ``"mnist7x7"``.
        split: ``"train"`` or ``"test"``; for ``cifar10`` also ``"test_lossless"``, the
            byte-exact test rows (see ``info("cifar10").description``).
        data_dir: Folder searched first; overrides ``$TN_KERAS_DATA``.
        offline: Forbid the keras download. None reads ``$TN_KERAS_OFFLINE``.

    Returns:
        ``(x, y)``: images ``(N, H, W, C)`` channels-last, uint8 in 0..255 (``mnist7x7``:
        float32 exact 4x4 block means in 0..255), and int64 labels ``(N,)``. The arrays are
        shared with the cache and read-only (``writeable=False``); copy before modifying.

    Raises:
        ValueError: Unknown ``name`` or ``split``.
        DatasetNotFoundError: No source has the data; the message lists every path tried.
        DatasetFormatError: A found file is corrupt or malformed.
    """
    spec = info(name)
    if split not in spec.splits:
        raise ValueError(
            f"Unknown split={split!r} for dataset {name!r}. Valid choices: "
            f"{', '.join(spec.splits)}."
        )
    if name == "digits":
        arrays = _cached(("digits",), derived.digits_arrays, spec, "scikit-learn")
    elif name == "mnist7x7":
        mnist_key, mnist = _load_source(info("mnist"), data_dir, offline)
        arrays = _cached(("mnist7x7",) + mnist_key, lambda: _block_mean_arrays(mnist),
                         spec, "mnist7x7", validate=False)
    else:
        arrays = _load_source(spec, data_dir, offline)[1]
    return _split(arrays, split)


def source_arrays(name: str, data_dir=None, offline=None) -> dict[str, np.ndarray]:
    """Every array of dataset ``name``'s first source in `load`'s search order (``data_dir``,
    ``TN_KERAS_DATA``, tensorflow-datasets, Keras): the cached, read-only arrays `load` splits,
    ``x_train``, ``y_train``, ``x_test``, ``y_test`` and, where the source has one, the
    ``test_is_lossless`` mask (and the lossless rows, once `load` has made them). For the
    datasets `load` computes in memory (digits, mnist7x7) there is no source: use `load`."""
    return _load_source(info(name), data_dir, offline)[1]


def _block_mean_arrays(mnist: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {
        "x_train": derived.block_mean_7x7(mnist["x_train"]), "y_train": mnist["y_train"],
        "x_test": derived.block_mean_7x7(mnist["x_test"]), "y_test": mnist["y_test"],
    }


def _split(arrays: dict[str, np.ndarray], split: str) -> tuple[np.ndarray, np.ndarray]:
    if split != "test_lossless":
        return arrays[f"x_{split}"], arrays[f"y_{split}"]
    if "test_is_lossless" not in arrays:
        # Original distributions (official archive, tfds, keras) are lossless throughout.
        return arrays["x_test"], arrays["y_test"]
    with _CACHE_LOCK:
        if "x_test_lossless" not in arrays:
            mask = arrays["test_is_lossless"]
            arrays["x_test_lossless"] = _freeze(arrays["x_test"][mask])
            arrays["y_test_lossless"] = _freeze(arrays["y_test"][mask])
    return arrays["x_test_lossless"], arrays["y_test_lossless"]


def _freeze(array: np.ndarray) -> np.ndarray:
    array.flags.writeable = False
    return array


def _cached(key: tuple, reader: Reader, spec: DatasetInfo, origin: str,
            validate: bool = True) -> dict[str, np.ndarray]:
    """Returns the cached arrays for ``key``, reading and validating them on a miss."""
    with _CACHE_LOCK:
        if key in _CACHE:
            return _CACHE[key]
    # Read outside the lock: a cold CIFAR-10 load takes seconds. Validation happens before the
    # arrays enter the cache, so a half-loaded or invalid dataset is never stored.
    arrays = reader()
    if validate:
        arrays = validate_arrays(arrays, spec, origin)
    arrays = {k: _freeze(v) for k, v in arrays.items()}
    with _CACHE_LOCK:
        return _CACHE.setdefault(key, arrays)


def _file_key(kind: str, *paths: str) -> tuple:
    stats = []
    for path in paths:
        real = os.path.realpath(path)
        st = os.stat(real)
        stats.append((real, st.st_mtime_ns, st.st_size))
    return (kind, *stats)


def is_offline(offline: bool | None) -> bool:
    """Resolves the ``offline`` argument, falling back to ``$TN_KERAS_OFFLINE``."""
    if offline is not None:
        return bool(offline)
    return os.environ.get(OFFLINE_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def _load_source(spec: DatasetInfo, data_dir, offline) -> tuple[tuple, dict[str, np.ndarray]]:
    """Finds the first source of ``spec.name`` in search order and returns (key, arrays)."""
    name = spec.name
    tried: list[str] = []

    folder, label = (data_dir, "data_dir") if data_dir is not None else (
        os.environ.get(DATA_ENV), DATA_ENV)
    if not folder:
        tried.append(f"data_dir argument / ${DATA_ENV}: not set")
    elif not os.path.isdir(folder):
        tried.append(f"{folder} ({label}): not a folder")
    else:
        folder = os.fspath(folder)
        found = _find_in_folder(spec, folder, label, tried)
        if found is not None:
            key, reader, origin = found
            return key, _cached(key, reader, spec, origin)

    root = tfds_source.tfds_root()
    prepared = tfds_source.prepared_dir(name, root)
    if prepared is None:
        tried.append(
            f"{os.path.join(root, name, '<version>', 'dataset_info.json')} "
            "(tensorflow-datasets): no prepared dataset"
        )
    else:
        key = _file_key("tfds", os.path.join(prepared, "dataset_info.json"))
        return key, _cached(key, lambda: _read_tfds(name, root, prepared), spec, prepared)

    call = f"keras.datasets.{name}.load_data()"
    if is_offline(offline):
        tried.append(f"{call}: skipped, offline mode (offline=True or ${OFFLINE_ENV}=1)")
    else:
        try:
            key = ("keras", name)
            return key, _cached(key, lambda: keras_source.read_keras(name), spec, call)
        except DatasetFormatError:
            raise
        except Exception as e:  # Download failures come as many types (URL, HTTP, OS, ...).
            tried.append(f"{call}: failed ({type(e).__name__}: {e})")
            raise _not_found(spec, tried) from e
    raise _not_found(spec, tried)


def _read_tfds(name: str, root: str, prepared: str) -> dict[str, np.ndarray]:
    try:
        return tfds_source.read_tfds(name, root)
    except Exception as e:  # tfds raises assorted types for a damaged prepared folder.
        raise DatasetFormatError(f"{prepared}: cannot read prepared tfds dataset ({e}).") from e


def _find_in_folder(spec: DatasetInfo, folder: str, label: str, tried: list[str]):
    """Returns (cache key, reader, origin) for the first file source in ``folder``, or None."""
    name = spec.name
    index = shards.find(folder, name)  # `tn-keras data pack` output comes first
    if index is not None:
        return _file_key("shards", index), lambda: shards.read(index), index
    npz = sources.npz_path(folder, name)
    if sources.is_data_file(npz):
        return _file_key("npz", npz), lambda: sources.read_npz(npz), npz
    tried.append(f"{npz} ({label}): not found")

    if name == "cifar10":
        for archive in sources.cifar_archive_candidates(folder):
            if sources.is_data_file(archive):
                return (_file_key("cifar-tar", archive),
                        lambda: sources.read_cifar10_archive(archive), archive)
            tried.append(f"{archive} ({label}): not found")
        return None

    for sub in sources.idx_candidates(folder, name):
        paths = [os.path.join(sub, f) for f in sources.IDX_FILES.values()]
        missing = [os.path.basename(p) for p in paths if not sources.is_data_file(p)]
        pattern = os.path.join(sub, "{train,t10k}-{images,labels}-idx*-ubyte.gz")
        if not missing:
            return (_file_key("idx", *paths) + (name,),
                    lambda: sources.read_idx_folder(sub, name), sub)
        if len(missing) == len(paths):
            tried.append(f"{pattern} ({label}): not found")
        else:
            tried.append(f"{pattern} ({label}): incomplete, missing {', '.join(missing)}")
    return None


def _not_found(spec: DatasetInfo, tried: list[str]) -> DatasetNotFoundError:
    name = spec.name
    if name == "cifar10":
        files = f"{name}.npz or {sources.CIFAR10_ARCHIVE}"
    else:
        files = f"{name}.npz or the four idx .gz files ({', '.join(sources.IDX_FILES.values())})"
    lines = "\n".join(f"  - {t}" for t in tried)
    return DatasetNotFoundError(
        f"Dataset {name!r} was not found. Tried, in order:\n{lines}\n"
        f"To fix: put {files} (npz keys: x_train, y_train, x_test, y_test) into a folder and "
        f"pass data_dir=<folder> or set {DATA_ENV}=<folder>; or prepare it with "
        f"tensorflow-datasets; or allow the keras download with offline=False / "
        f"{OFFLINE_ENV}=0."
    )
