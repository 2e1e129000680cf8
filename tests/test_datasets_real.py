"""Tests against the real datasets in $TN_KERAS_DATA (skipped when it is unset).

Each file is read once per session: `load` caches arrays in-process, so the many tests
below share one read of the 170 MB cifar10.npz.
"""
import numpy as np
import pytest

from tn_keras import datasets
from tn_keras.datasets.stats import channel_stats

pytestmark = pytest.mark.real_data

# Per-class counts of the published splits (MNIST, Fashion-MNIST, CIFAR-10).
COUNTS = {
    ("mnist", "train"): [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949],
    ("mnist", "test"): [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009],
    ("fashion_mnist", "train"): [6000] * 10,
    ("fashion_mnist", "test"): [1000] * 10,
    ("cifar10", "train"): [5000] * 10,
    ("cifar10", "test"): [1000] * 10,
}
FIRST_LABELS = {
    ("mnist", "train"): [5, 0, 4, 1, 9, 2, 1, 3, 1, 4],
    ("mnist", "test"): [7, 2, 1, 0, 4, 1, 4, 9, 5, 9],
    ("fashion_mnist", "train"): [9, 0, 0, 3, 0, 2, 7, 2, 5, 5],
    ("cifar10", "train"): [6, 9, 9, 4, 1, 1, 2, 7, 8, 3],
    ("cifar10", "test"): [3, 8, 8, 0, 6, 6, 1, 6, 3, 1],
}


@pytest.mark.parametrize("name, split", list(COUNTS))
def test_split_shapes_and_class_counts(real_data_dir, name, split):
    x, y = datasets.load(name, split, data_dir=real_data_dir)
    spec = datasets.info(name)
    assert x.shape == (sum(COUNTS[name, split]), *spec.image_shape)
    assert x.dtype == np.uint8 and y.dtype == np.int64 and not x.flags.writeable
    assert np.bincount(y, minlength=10).tolist() == COUNTS[name, split]
    if (name, split) in FIRST_LABELS:
        assert y[:10].tolist() == FIRST_LABELS[name, split]


def test_cifar10_test_lossless(real_data_dir):
    x, y = datasets.load("cifar10", "test_lossless", data_dir=real_data_dir)
    x_test, y_test = datasets.load("cifar10", "test", data_dir=real_data_dir)
    assert x.shape == (1000, 32, 32, 3) and len(y) == 1000
    counts = np.bincount(y, minlength=10)
    assert counts.min() >= 86 and counts.max() <= 112  # the first 1,000 test images: 86-112 per class
    # The lossless rows are the first 1000 (original test images 0-999).
    np.testing.assert_array_equal(x, x_test[:1000])
    np.testing.assert_array_equal(y, y_test[:1000])


def test_mnist7x7_is_block_average(real_data_dir):
    for split in ("train", "test"):
        x7, y7 = datasets.load("mnist7x7", split, data_dir=real_data_dir)
        x, y = datasets.load("mnist", split, data_dir=real_data_dir)
        expected = x.reshape(len(x), 7, 4, 7, 4, 1).astype(np.float64).mean(axis=(2, 4))
        assert x7.dtype == np.float32 and x7.shape == (len(x), 7, 7, 1)
        np.testing.assert_array_equal(x7, expected)
        np.testing.assert_array_equal(y7, y)


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist", "cifar10", "mnist7x7"])
def test_stats_constants_match_recomputation(real_data_dir, name):
    x, _ = datasets.load(name, "train", data_dir=real_data_dir)
    mean, std = channel_stats(x)
    spec = datasets.info(name)
    np.testing.assert_allclose(spec.mean, mean, atol=1e-3)
    np.testing.assert_allclose(spec.std, std, atol=1e-3)


def test_cifar10_training_pipeline(real_data_dir):
    x, y = datasets.load("cifar10", "train", data_dir=real_data_dir)
    ds = datasets.make_dataset(x, y, 64, training=True, seed=0, dataset_name="cifar10")
    for xb, yb in ds.take(2):
        assert xb.shape == (64, 32, 32, 3) and xb.dtype.name == "float32"
        assert yb.shape == (64,)
        assert 0.0 <= float(np.min(xb)) and float(np.max(xb)) <= 255.0
    ds = datasets.make_dataset(x[:256], y[:256], 128, normalize=True, dataset_name="cifar10")
    xb = np.concatenate([b[0].numpy() for b in ds])
    assert abs(xb.mean()) < 0.5 and 0.5 < xb.std() < 1.5
