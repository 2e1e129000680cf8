"""The NumPy input pipeline (every backend but TensorFlow): augmentation maths against an
independent NumPy computation, determinism given a seed, worker threads."""
import keras
import numpy as np
import pytest

from tn_keras import datasets
from tn_keras.datasets import augment
from tn_keras.datasets.array_pipeline import ArrayDataset

pytestmark = pytest.mark.backend_neutral


def _images(n, shape=(12, 10, 3), seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, *shape), dtype=np.uint8)


def _numpy_pipeline(x, y, batch_size, **kwargs):
    return datasets.make_dataset(x, y, batch_size, pipeline="numpy", **kwargs)


def test_shift_and_flip_matches_slicing():
    x = _images(6)
    dy, dx = np.array([0, 8, 3, 4, 1, 7]), np.array([8, 0, 5, 4, 2, 6])
    flips = np.array([True, False, True, False, False, True])
    out = augment.shift_and_flip(x, dy, dx, flips, padding=4)
    for i in range(6):
        padded = np.zeros((12 + 8, 10 + 8, 3), np.float32)
        padded[4:16, 4:14] = x[i]
        crop = padded[dy[i]:dy[i] + 12, dx[i]:dx[i] + 10]
        np.testing.assert_array_equal(out[i], crop[:, ::-1] if flips[i] else crop)
    assert out.dtype == np.float32


def test_crop_and_flip_batches_are_padded_crops_of_their_images():
    x, y = _images(8, (8, 8, 3)), np.arange(8)
    ds = _numpy_pipeline(x, y, 8, augment=True, seed=1)
    xb, yb = ds[0]
    np.testing.assert_array_equal(yb, y)  # no shuffle without training
    padded = np.pad(x, [(0, 0), (4, 4), (4, 4), (0, 0)]).astype(np.float32)
    for i in range(8):
        candidates = [padded[i, a:a + 8, b:b + 8] for a in range(9) for b in range(9)]
        candidates += [c[:, ::-1] for c in candidates]
        assert any(np.array_equal(xb[i], c) for c in candidates)


def test_translate_shifts_up_to_two_pixels_without_flips():
    x = np.zeros((64, 12, 12, 1), np.uint8)
    x[:, 5, 4, 0] = 200  # off-centre: a flip would move it to column 7
    ds = _numpy_pipeline(x, np.zeros(64, np.int64), 64, training=True, augment="translate",
                         seed=4, dataset_name="mnist")
    images = ds[0][0][..., 0]
    assert np.all(images.sum(axis=(1, 2)) == 200)
    rows, cols = np.nonzero(images == 200)[1:]
    assert np.all(np.abs(rows - 5) <= augment.TRANSLATE_PIXELS)
    assert np.all(np.abs(cols - 4) <= augment.TRANSLATE_PIXELS)
    assert len(set(zip(rows, cols))) > 5


def test_same_seed_same_batches_every_epoch_different():
    x, y = _images(40, (8, 8, 3)), np.arange(40)
    make = lambda seed: _numpy_pipeline(x, y, 16, training=True, seed=seed,  # noqa: E731
                                        dataset_name="cifar10")
    a, b = make(3), make(3)
    for epoch in (0, 1):
        for (xa, ya), (xb, yb) in zip(a.epoch_batches(epoch), b.epoch_batches(epoch)):
            np.testing.assert_array_equal(xa, xb)
            np.testing.assert_array_equal(ya, yb)
    first, second = a.epoch_batches(0), a.epoch_batches(1)
    assert not np.array_equal(first[0][1], second[0][1])  # a new order
    assert not np.array_equal(make(4).epoch_batches(0)[0][0], first[0][0])
    # Every example once per epoch; the last batch is the remainder.
    assert sorted(np.concatenate([b[1] for b in first])) == list(range(40))
    assert [len(b[1]) for b in first] == [16, 16, 8]


def test_prefetching_threads_give_the_batches_of_the_epoch():
    x, y = _images(50, (8, 8, 3)), np.arange(50)
    ds = _numpy_pipeline(x, y, 8, training=True, seed=0, dataset_name="cifar10", workers=3)
    # Keras's own enqueuer stays off (workers=1): the dataset's threads prefetch in order.
    assert ds.threads == 3 and ds.workers == 1 and not ds.use_multiprocessing
    for epoch in (0, 1):
        ds.on_epoch_begin()
        assert ds.epoch == epoch
        prefetched = [ds[i] for i in range(len(ds))]
        ds.on_epoch_end()
        for (xa, ya), (xb, yb) in zip(prefetched, ds.epoch_batches(epoch)):
            np.testing.assert_array_equal(xa, xb)
            np.testing.assert_array_equal(ya, yb)


def _fit_weights(workers):
    x, y = _images(64, (8, 8, 1)), np.arange(64) % 2
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(),
                              keras.layers.Dense(2, activation="softmax")])
    model.compile("sgd", "sparse_categorical_crossentropy")
    ds = _numpy_pipeline(x, y, 8, training=True, augment="translate", seed=0, workers=workers)
    history = model.fit(ds, epochs=3, verbose=0, shuffle=False)
    assert len(history.history["loss"]) == 3
    return model.get_weights(), ds.epoch


def test_fit_sees_the_same_batches_with_any_number_of_threads():
    (one, epochs), (three, _) = _fit_weights(1), _fit_weights(3)
    assert epochs >= 2  # the epochs advanced (JAX's trainer also peeks at a batch first)
    for a, b in zip(one, three):
        np.testing.assert_array_equal(a, b)


def test_normalize_and_drop_remainder_match_numpy():
    x, y = _images(10, (4, 4, 3)), np.arange(10)
    ds = _numpy_pipeline(x, y, 4, normalize=True, dataset_name="cifar10", drop_remainder=True)
    assert len(ds) == 2
    spec = datasets.info("cifar10")
    got = np.concatenate([b[0] for b in ds.epoch_batches(0)])
    np.testing.assert_allclose(got, (x[:8] - np.array(spec.mean)) / np.array(spec.std),
                               atol=1e-4)


def test_the_backend_picks_the_pipeline():
    from tn_keras.datasets.pipeline import default_pipeline

    x, y = _images(4, (4, 4, 1)), np.arange(4)
    ds = datasets.make_dataset(x, y, 2)
    if keras.backend.backend() == "tensorflow":
        assert default_pipeline() == "tf.data" and not isinstance(ds, ArrayDataset)
    else:
        assert default_pipeline() == "numpy" and isinstance(ds, ArrayDataset)
    with pytest.raises(ValueError, match="pipeline"):
        datasets.make_dataset(x, y, 2, pipeline="grain")
