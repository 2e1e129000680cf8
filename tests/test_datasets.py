"""Fast tests of tn_keras.datasets on synthetic files written into tmp_path."""
import gzip
import io
import os
import pickle
import tarfile

import numpy as np
import pytest

from tn_keras import datasets
from tn_keras.datasets import loader, sources, tfds_source
from tn_keras.datasets.errors import DatasetFormatError, DatasetNotFoundError


# ----------------------------------------------------------------------------- fixtures

def _arrays(shape, n_train=12, n_test=6, seed=0):
    rng = np.random.default_rng(seed)
    return {
        "x_train": rng.integers(0, 256, (n_train, *shape), dtype=np.uint8),
        "y_train": rng.integers(0, 10, n_train).astype(np.uint8),
        "x_test": rng.integers(0, 256, (n_test, *shape), dtype=np.uint8),
        "y_test": rng.integers(0, 10, n_test).astype(np.uint8),
    }


def _write_idx_gz(path, array):
    header = bytes([0, 0, 8, array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def _write_idx_folder(folder, arrays):
    os.makedirs(folder, exist_ok=True)
    for key, filename in sources.IDX_FILES.items():
        _write_idx_gz(os.path.join(folder, filename), arrays[key])


def _write_cifar_tar(path, arrays, skip_member=None):
    """Writes the official layout: 5 train batches + test_batch + batches.meta (protocol 2)."""
    def chunk(x, y):
        data = x.transpose(0, 3, 1, 2).reshape(len(x), -1)  # HWC -> channel-major rows.
        return {b"batch_label": b"synthetic", b"labels": [int(v) for v in y], b"data": data}

    x_parts = np.array_split(arrays["x_train"], 5)
    y_parts = np.array_split(arrays["y_train"], 5)
    members = {f"data_batch_{i + 1}": chunk(x_parts[i], y_parts[i]) for i in range(5)}
    members["test_batch"] = chunk(arrays["x_test"], arrays["y_test"])
    members["batches.meta"] = {b"label_names": [b"c%d" % i for i in range(10)]}
    with tarfile.open(path, "w:gz") as tar:
        for name, obj in members.items():
            if name == skip_member:
                continue
            blob = pickle.dumps(obj, protocol=2)
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))


@pytest.fixture
def no_tfds(monkeypatch, tmp_path):
    """Points tfds at an empty folder and fails loudly if tfds would be called."""
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path / "tfds_empty"))

    def forbidden(*args, **kwargs):
        raise AssertionError("tfds must not be called without a prepared folder")

    monkeypatch.setattr(tfds_source, "read_tfds", forbidden)
    monkeypatch.delenv("TN_KERAS_DATA", raising=False)


# ----------------------------------------------------------------------------- registry

@pytest.mark.backend_neutral
def test_names_and_info():
    assert datasets.names() == ("mnist", "fashion_mnist", "cifar10", "digits", "mnist7x7")
    spec = datasets.info("cifar10")
    assert spec.image_shape == (32, 32, 3) and spec.num_classes == 10
    assert len(spec.class_names) == 10 and len(spec.mean) == len(spec.std) == 3
    assert "test_lossless" in spec.splits
    assert datasets.info("mnist7x7").dtype == "float32"
    with pytest.raises(Exception):
        spec.name = "x"  # frozen


@pytest.mark.backend_neutral
def test_unknown_name_and_split():
    with pytest.raises(ValueError, match=r"name='svhn'.*mnist.*cifar10"):
        datasets.info("svhn")
    with pytest.raises(ValueError, match=r"name='svhn'"):
        datasets.load("svhn")
    with pytest.raises(ValueError, match=r"split='test_lossless'.*train, test"):
        datasets.load("mnist", "test_lossless")


# ----------------------------------------------------------------------------- formats

@pytest.mark.backend_neutral
def test_npz_load_shapes_cache_readonly(tmp_path, no_tfds):
    arrays = _arrays((28, 28))
    np.savez(tmp_path / "mnist.npz", **arrays)
    x, y = datasets.load("mnist", "train", data_dir=tmp_path)
    assert x.shape == (12, 28, 28, 1) and x.dtype == np.uint8
    assert y.shape == (12,) and y.dtype == np.int64
    np.testing.assert_array_equal(x[..., 0], arrays["x_train"])
    assert not x.flags.writeable and not y.flags.writeable
    x2, _ = datasets.load("mnist", "train", data_dir=str(tmp_path))
    assert x2 is x  # served from the cache
    xt, yt = datasets.load("mnist", "test", data_dir=tmp_path)
    assert xt.shape == (6, 28, 28, 1) and len(yt) == 6

    # Replacing the file (new mtime) invalidates the cache entry.
    new = _arrays((28, 28), n_train=3, seed=1)
    np.savez(tmp_path / "mnist.npz", **new)
    st = os.stat(tmp_path / "mnist.npz")
    os.utime(tmp_path / "mnist.npz", ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    assert datasets.load("mnist", data_dir=tmp_path)[0].shape[0] == 3


@pytest.mark.backend_neutral
@pytest.mark.parametrize("subfolder", [True, False])
def test_idx_gz_load(tmp_path, no_tfds, subfolder):
    arrays = _arrays((28, 28))
    _write_idx_folder(tmp_path / "fashion_mnist" if subfolder else tmp_path, arrays)
    x, y = datasets.load("fashion_mnist", "test", data_dir=tmp_path)
    assert x.shape == (6, 28, 28, 1) and y.dtype == np.int64
    np.testing.assert_array_equal(x[..., 0], arrays["x_test"])
    np.testing.assert_array_equal(y, arrays["y_test"])


@pytest.mark.backend_neutral
def test_cifar_tarball_load(tmp_path, no_tfds):
    arrays = _arrays((32, 32, 3), n_train=10, n_test=4)
    _write_cifar_tar(tmp_path / "cifar-10-python.tar.gz", arrays)
    before = sorted(os.listdir(tmp_path))
    x, y = datasets.load("cifar10", "train", data_dir=tmp_path)
    assert x.shape == (10, 32, 32, 3) and x.dtype == np.uint8
    np.testing.assert_array_equal(x, arrays["x_train"])
    np.testing.assert_array_equal(y, arrays["y_train"])
    # The official archive is lossless throughout.
    xl, _ = datasets.load("cifar10", "test_lossless", data_dir=tmp_path)
    np.testing.assert_array_equal(xl, arrays["x_test"])
    assert sorted(os.listdir(tmp_path)) == before  # nothing extracted into the data folder


@pytest.mark.backend_neutral
def test_cifar_npz_test_lossless_mask(tmp_path, no_tfds):
    arrays = _arrays((32, 32, 3), n_train=4, n_test=6)
    mask = np.array([True, False, True, False, False, True])
    np.savez(tmp_path / "cifar10.npz", test_is_lossless=mask, **arrays)
    x, y = datasets.load("cifar10", "test_lossless", data_dir=tmp_path)
    np.testing.assert_array_equal(x, arrays["x_test"][mask])
    np.testing.assert_array_equal(y, arrays["y_test"][mask])
    assert not x.flags.writeable


@pytest.mark.backend_neutral
def test_mnist7x7_is_exact_block_mean(tmp_path, no_tfds):
    arrays = _arrays((28, 28))
    np.savez(tmp_path / "mnist.npz", **arrays)
    x, y = datasets.load("mnist7x7", "train", data_dir=tmp_path)
    expected = arrays["x_train"].reshape(12, 7, 4, 7, 4).astype(np.float64).mean(axis=(2, 4))
    assert x.shape == (12, 7, 7, 1) and x.dtype == np.float32
    np.testing.assert_array_equal(x[..., 0], expected)  # exact, not rounded
    np.testing.assert_array_equal(y, arrays["y_train"])


@pytest.mark.backend_neutral
def test_digits_split_and_stats():
    from sklearn.datasets import load_digits

    x, y = datasets.load("digits", "train")
    xt, yt = datasets.load("digits", "test")
    assert x.shape == (1437, 8, 8, 1) and xt.shape == (360, 8, 8, 1)
    assert x.dtype == np.uint8 and x.max() == 255 and y.dtype == np.int64
    assert np.isin(np.unique(x), np.rint(np.arange(17) * 255 / 16)).all()
    assert sorted(np.bincount(yt)) == sorted(np.bincount(load_digits().target) - np.bincount(y))
    flat = x.reshape(-1).astype(np.float64)
    spec = datasets.info("digits")
    np.testing.assert_allclose(spec.mean, [flat.mean()], atol=1e-3)
    np.testing.assert_allclose(spec.std, [flat.std()], atol=1e-3)


# ----------------------------------------------------------------------------- search order

@pytest.mark.backend_neutral
def test_data_dir_beats_env(tmp_path, no_tfds, monkeypatch):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    np.savez(a / "mnist.npz", **_arrays((28, 28), n_train=5))
    np.savez(b / "mnist.npz", **_arrays((28, 28), n_train=7))
    monkeypatch.setenv("TN_KERAS_DATA", str(b))
    assert len(datasets.load("mnist")[0]) == 7
    assert len(datasets.load("mnist", data_dir=a)[0]) == 5


@pytest.mark.backend_neutral
def test_offline_not_found_lists_every_path(tmp_path, no_tfds):
    with pytest.raises(DatasetNotFoundError) as err:
        datasets.load("cifar10", data_dir=tmp_path, offline=True)
    msg = str(err.value)
    assert isinstance(err.value, FileNotFoundError)
    for path in (tmp_path / "cifar10.npz", tmp_path / "cifar-10-python.tar.gz",
                 tmp_path / "cifar10" / "cifar-10-python.tar.gz", tmp_path / "tfds_empty"):
        assert str(path) in msg
    assert "TN_KERAS_DATA" in msg and "offline" in msg and "keras.datasets.cifar10" in msg


@pytest.mark.backend_neutral
def test_env_offline_and_incomplete_idx(tmp_path, no_tfds, monkeypatch):
    monkeypatch.setenv("TN_KERAS_OFFLINE", "1")
    _write_idx_folder(tmp_path / "mnist", _arrays((28, 28)))
    os.remove(tmp_path / "mnist" / "t10k-labels-idx1-ubyte.gz")
    with pytest.raises(DatasetNotFoundError, match="missing t10k-labels-idx1-ubyte.gz"):
        datasets.load("mnist", data_dir=tmp_path)


@pytest.mark.backend_neutral
def test_prepared_tfds_folder_is_used(tmp_path, monkeypatch):
    monkeypatch.delenv("TN_KERAS_DATA", raising=False)
    root = tmp_path / "tfds"
    (root / "mnist" / "3.0.1").mkdir(parents=True)
    (root / "mnist" / "3.0.1" / "dataset_info.json").write_text("{}")
    monkeypatch.setenv("TFDS_DATA_DIR", str(root))
    calls = []

    def fake_read(name, data_root):
        calls.append((name, data_root))
        arrays = _arrays((28, 28, 1))
        return {k: v.astype(np.int64) if k[0] == "y" else v for k, v in arrays.items()}

    monkeypatch.setattr(tfds_source, "read_tfds", fake_read)
    x, _ = datasets.load("mnist", offline=True)
    assert calls == [("mnist", str(root))] and x.shape == (12, 28, 28, 1)


# ----------------------------------------------------------------------------- corrupt files

def _npz(tmp_path, name="mnist", **overrides):
    arrays = _arrays((32, 32, 3) if name == "cifar10" else (28, 28))
    arrays.update(overrides)
    arrays = {k: v for k, v in arrays.items() if v is not None}
    np.savez(tmp_path / f"{name}.npz", **arrays)
    return f"{name}.npz"


NPZ_FAULTS = {
    "missing key": (dict(y_test=None), "missing key"),
    "wrong ndim": (dict(x_train=np.zeros((12, 784), np.uint8)), "ndim 2"),
    "wrong dtype": (dict(x_train=np.zeros((12, 28, 28), np.float32)), "dtype float32"),
    "wrong shape": (dict(x_train=np.zeros((12, 27, 27), np.uint8),
                         x_test=np.zeros((6, 27, 27), np.uint8)), r"expected \(28, 28, 1\)"),
    "labels out of range": (dict(y_train=np.full(12, 10, np.uint8)), "labels in 10..10"),
    "negative labels": (dict(y_test=np.full(6, -1, np.int64)), "labels in -1..-1"),
    "shapes differ": (dict(x_test=np.zeros((6, 14, 14), np.uint8)), "different shapes"),
    "count mismatch": (dict(y_train=np.zeros(11, np.uint8)), "12 images but y_train has 11"),
}


@pytest.mark.backend_neutral
@pytest.mark.parametrize("fault", NPZ_FAULTS)
def test_npz_faults(tmp_path, no_tfds, fault):
    overrides, pattern = NPZ_FAULTS[fault]
    filename = _npz(tmp_path, **overrides)
    with pytest.raises(DatasetFormatError, match=pattern) as err:
        datasets.load("mnist", data_dir=tmp_path)
    assert filename in str(err.value)


@pytest.mark.backend_neutral
def test_truncated_npz(tmp_path, no_tfds):
    _npz(tmp_path)
    blob = (tmp_path / "mnist.npz").read_bytes()
    (tmp_path / "mnist.npz").write_bytes(blob[: len(blob) // 2])
    with pytest.raises(DatasetFormatError, match="mnist.npz"):
        datasets.load("mnist", data_dir=tmp_path)


@pytest.mark.backend_neutral
def test_bad_lossless_mask(tmp_path, no_tfds):
    _npz(tmp_path, "cifar10", test_is_lossless=np.ones(5, bool))
    with pytest.raises(DatasetFormatError, match="test_is_lossless"):
        datasets.load("cifar10", data_dir=tmp_path)


def _corrupt_truncated_gz(path):
    blob = path.read_bytes()
    path.write_bytes(blob[: len(blob) // 2])


def _corrupt_magic(path):
    _write_idx_gz(path, np.zeros((6, 28, 28), np.uint8))
    with gzip.open(path, "rb") as f:
        raw = bytearray(f.read())
    raw[2] = 0x0D  # float type code instead of unsigned byte
    with gzip.open(path, "wb") as f:
        f.write(bytes(raw))


def _corrupt_size(path):
    with gzip.open(path, "rb") as f:
        raw = f.read()
    with gzip.open(path, "wb") as f:
        f.write(raw[:-5])


@pytest.mark.parametrize("corrupt, pattern", [
    (_corrupt_truncated_gz, "corrupt or truncated gzip"),
    (_corrupt_magic, "bad idx magic"),
    (_corrupt_size, "declares shape"),
])
@pytest.mark.backend_neutral
def test_idx_faults(tmp_path, no_tfds, corrupt, pattern):
    _write_idx_folder(tmp_path / "mnist", _arrays((28, 28)))
    corrupt(tmp_path / "mnist" / "t10k-images-idx3-ubyte.gz")
    with pytest.raises(DatasetFormatError, match=pattern) as err:
        datasets.load("mnist", data_dir=tmp_path)
    assert "t10k-images-idx3-ubyte.gz" in str(err.value)


@pytest.mark.backend_neutral
def test_idx_official_size_checksum(tmp_path, no_tfds):
    """Files with the official item count must match the published md5."""
    arrays = _arrays((28, 28))
    arrays["y_test"] = np.zeros(10000, np.uint8)
    arrays["x_test"] = np.zeros((10000, 28, 28), np.uint8)
    _write_idx_folder(tmp_path / "mnist", arrays)
    with pytest.raises(DatasetFormatError, match="md5") as err:
        datasets.load("mnist", data_dir=tmp_path)
    assert "t10k-images-idx3-ubyte.gz" in str(err.value)


@pytest.mark.backend_neutral
def test_cifar_tar_faults(tmp_path, no_tfds):
    arrays = _arrays((32, 32, 3), n_train=10, n_test=2)
    path = tmp_path / "cifar-10-python.tar.gz"
    _write_cifar_tar(path, arrays, skip_member="test_batch")
    with pytest.raises(DatasetFormatError, match="no member.*test_batch"):
        datasets.load("cifar10", data_dir=tmp_path)

    _write_cifar_tar(path, arrays)
    blob = path.read_bytes()
    path.write_bytes(blob[: len(blob) // 2])
    os.utime(path, ns=(0, 10**9))  # distinct cache key
    with pytest.raises(DatasetFormatError, match="corrupt or truncated archive") as err:
        datasets.load("cifar10", data_dir=tmp_path)
    assert "cifar-10-python.tar.gz" in str(err.value)


# ----------------------------------------------------------------------------- pipeline

def _collect(ds):
    return [(xb.numpy(), yb.numpy()) for xb, yb in ds]


def test_make_dataset_deterministic_with_seed():
    arrays = _arrays((32, 32, 3), n_train=40)
    x, y = arrays["x_train"], arrays["y_train"]
    make = lambda: datasets.make_dataset(x, y, 16, training=True, seed=3,  # noqa: E731
                                         dataset_name="cifar10")
    ds1, ds2 = make(), make()
    epoch1a, epoch2a = _collect(ds1), _collect(ds1)
    epoch1b, epoch2b = _collect(ds2), _collect(ds2)
    for (xa, ya), (xb, yb) in zip(epoch1a + epoch2a, epoch1b + epoch2b):
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ya, yb)
    assert not np.array_equal(epoch1a[0][0], epoch2a[0][0])  # new shuffle/augment per epoch
    other = _collect(datasets.make_dataset(x, y, 16, training=True, seed=4,
                                           dataset_name="cifar10"))
    assert not np.array_equal(other[0][0], epoch1a[0][0])


@pytest.mark.parametrize("augment", [True, "translate", False])
def test_a_pipeline_started_at_epoch_e_repeats_epoch_e(augment):
    """A resumed run builds a new pipeline and starts at epoch e: its batches must be those an
    uninterrupted run saw at e (tf.data's own shuffle would give epoch 0's order again)."""
    x, y = _arrays((32, 32, 3), n_train=40)["x_train"], np.arange(40)  # labels name rows
    make = lambda: datasets.make_dataset(x, y, 16, training=True, seed=3,  # noqa: E731
                                         augment=augment, dataset_name="cifar10",
                                         normalize=True)
    uninterrupted = make()
    epochs = []
    for epoch in range(3):
        uninterrupted.epoch_clock.on_epoch_begin(epoch)
        epochs.append(_collect(uninterrupted))
    resumed = make()
    resumed.epoch_clock.on_epoch_begin(2)
    for (xa, ya), (xb, yb) in zip(epochs[2], _collect(resumed)):
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ya, yb)
    assert sorted(np.concatenate([b[1] for b in epochs[2]])) == sorted(y)
    assert not np.array_equal(epochs[1][0][1], epochs[2][0][1])  # a new order each epoch
    # Iterated without the clock, each pass is the next epoch, as with a reshuffling dataset.
    free = make()
    for epoch in range(2):
        for (xa, ya), (xb, yb) in zip(epochs[epoch], _collect(free)):
            np.testing.assert_array_equal(xa, xb)
            np.testing.assert_array_equal(ya, yb)
    if augment is False:  # normalised, unaugmented: the images themselves, reordered
        spec = datasets.info("cifar10")
        xb, rows = epochs[0][0]
        np.testing.assert_allclose(xb, (x[rows] - np.array(spec.mean)) / np.array(spec.std),
                                   atol=1e-4)


def test_augmentation_is_padded_crop_and_flip():
    arrays = _arrays((32, 32, 3), n_train=8)
    x, y = arrays["x_train"], arrays["y_train"]
    (xb, yb), = _collect(datasets.make_dataset(x, y, 8, augment=True, seed=1))
    assert xb.shape == (8, 32, 32, 3) and xb.dtype == np.float32
    assert xb.min() >= 0 and xb.max() <= 255
    np.testing.assert_array_equal(yb, y)  # no shuffle without training
    padded = np.pad(x, [(0, 0), (4, 4), (4, 4), (0, 0)]).astype(np.float32)
    for i in range(8):
        candidates = [
            img for dy in range(9) for dx in range(9)
            for crop in [padded[i, dy:dy + 32, dx:dx + 32]] for img in (crop, crop[:, ::-1])
        ]
        assert any(np.array_equal(xb[i], c) for c in candidates)


def test_augment_defaults_and_refusal():
    x = np.zeros((4, 28, 28, 1), np.uint8)
    y = np.zeros(4, np.int64)
    (xb, _), = _collect(datasets.make_dataset(x + 7, y, 4, training=True, seed=0,
                                              dataset_name="mnist"))
    assert (xb == 7).all()  # no augmentation for mnist (zero padding would show up)
    with pytest.raises(ValueError, match="augment=True"):
        datasets.make_dataset(x, y, 4, augment=True, dataset_name="digits")
    with pytest.raises(ValueError, match="dataset_name"):
        datasets.make_dataset(x, y, 4, normalize=True)


def test_normalize_matches_numpy_and_drop_remainder():
    arrays = _arrays((32, 32, 3), n_train=10)
    x, y = arrays["x_train"], arrays["y_train"]
    batches = _collect(datasets.make_dataset(x, y, 4, normalize=True, dataset_name="cifar10",
                                             drop_remainder=True))
    assert [len(b[0]) for b in batches] == [4, 4]
    spec = datasets.info("cifar10")
    expected = (x[:8].astype(np.float64) - spec.mean) / spec.std
    np.testing.assert_allclose(np.concatenate([b[0] for b in batches]), expected, atol=1e-4)


def test_normalization_layer_matches_numpy():
    arrays = _arrays((32, 32, 3), n_train=4)
    x = arrays["x_train"].astype(np.float32)
    spec = datasets.info("cifar10")
    out = np.asarray(datasets.normalization_layer("cifar10")(x))
    np.testing.assert_allclose(out, (x - np.array(spec.mean)) / np.array(spec.std), atol=1e-4)


def test_translate_augmentation_shifts_without_flipping():
    # One bright pixel in the middle of each image: after a shift of at most
    # TRANSLATE_PIXELS it is still there, whole, never mirrored beyond the shift.
    from tn_keras.datasets.pipeline import TRANSLATE_PIXELS

    x = np.zeros((64, 12, 12, 1), np.uint8)
    x[:, 5, 6, 0] = 200
    y = np.zeros(64, np.int64)
    batches = [
        next(iter(datasets.make_dataset(x, y, 64, training=True, augment="translate", seed=4,
                                        dataset_name="mnist").as_numpy_iterator()))[0]
        for _ in range(2)
    ]
    np.testing.assert_array_equal(batches[0], batches[1])  # same seed, same shifts
    images = batches[0][..., 0]
    assert np.all(images.sum(axis=(1, 2)) == 200)
    rows, cols = np.nonzero(images.reshape(64, -1) == 200)[1] // 12, np.nonzero(
        images.reshape(64, -1) == 200)[1] % 12
    assert np.all(np.abs(rows - 5) <= TRANSLATE_PIXELS)
    assert np.all(np.abs(cols - 6) <= TRANSLATE_PIXELS)
    assert len(set(zip(rows, cols))) > 5  # the images really move, each its own way


def test_unknown_augmentation_name_is_refused():
    x = np.zeros((4, 8, 8, 1), np.uint8)
    with pytest.raises(ValueError, match="augment"):
        datasets.make_dataset(x, np.zeros(4, np.int64), 2, augment="rotate")
