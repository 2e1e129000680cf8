"""Distillation without TensorFlow: JAX and PyTorch distil, save, and TensorFlow reads it back.

A child process with TensorFlow blocked from import (``tests/_no_tensorflow.py``) distils the
8x8 digits (scikit-learn's copy, offline) for two levels with each method, twice with the same
seed, on a small PolyCG network with random weights, and saves the levels. This process (the
TensorFlow backend, as the suite runs) then reads them with ``load_level``.
"""
import importlib.util
import json
import os

import numpy as np
import pytest

from _no_tensorflow import stdout_without_tensorflow
from tn_keras import distill as D
from tn_keras.distill import config

pytestmark = pytest.mark.slow

CHILD = """
import json, os, sys

import keras
import numpy as np
from sklearn.datasets import load_digits

from tn_keras import distill as D
from tn_keras.layers import PolyCG


def model():
    # digits_taylornet's shape (PolyCG 8 -> 4 -> 2 -> 1), built here from tn_keras.layers.
    keras.utils.set_random_seed(0)
    inputs = keras.Input((8, 8, 1), name="image")
    x = keras.layers.Rescaling(1 / 255.0)(inputs)
    for i, filters in enumerate((16, 32, 64)):
        x = PolyCG(filters, 2, strides=2, name=f"cg{i + 1}")(x)
        x = keras.layers.BatchNormalization(name=f"cg{i + 1}_bn")(x)
    x = keras.layers.Flatten(name="embedding")(x)
    return keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(x))


digits = load_digits()
x = np.round(digits.images[..., None] * (255 / 16)).astype("uint8")
y = digits.target
net = model()
report = {}
for method in D.config.METHODS:
    settings = D.DistillConfig(levels=2, per_class=8, steps=3, method=method, seed=5)
    out = os.path.join(OUT, method)
    first = D.distill(net, x, y, settings=settings, export=D.LevelExportConfig(directory=out))
    again = D.distill(net, x, y, settings=settings)
    report[method] = dict(
        same_twice=all(np.array_equal(a.x, b.x) and np.array_equal(a.y, b.y)
                       for a, b in zip(first, again)),
        shapes=[list(level.x.shape) for level in first])
    np.savez(os.path.join(OUT, method + "_arrays.npz"),
             **{f"x{level.level}": level.x for level in first},
             **{f"y{level.level}": level.y for level in first})
report["tensorflow_imported"] = "tensorflow" in sys.modules
report["backend"] = keras.backend.backend()
print("REPORT " + json.dumps(report))
"""


def _available(backend):
    return importlib.util.find_spec({"jax": "jax", "torch": "torch"}[backend]) is not None


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_distils_without_tensorflow_and_tensorflow_reads_the_levels(backend, tmp_path):
    if not _available(backend):
        pytest.skip(f"{backend} is not installed")
    stdout = stdout_without_tensorflow(f"OUT = {str(tmp_path)!r}\n" + CHILD, backend=backend)
    (line,) = [ln for ln in stdout.splitlines() if ln.startswith("REPORT ")]
    report = json.loads(line[len("REPORT "):])
    assert report["backend"] == backend and report["tensorflow_imported"] is False
    for method in config.METHODS:
        assert report[method]["same_twice"], f"{method}: the same seed gave another level"
        assert report[method]["shapes"] == [[80, 8, 8, 1], [40, 8, 8, 1], [20, 8, 8, 1]]
        arrays = np.load(tmp_path / f"{method}_arrays.npz")
        for a in range(3):
            x, y = D.load_level(str(tmp_path / method), a)
            np.testing.assert_array_equal(x, arrays[f"x{a}"])
            np.testing.assert_array_equal(y, arrays[f"y{a}"])
        # The TensorFlow backend's tf.data view of the same level.
        ds = D.load_level(str(tmp_path / method), 2, as_dataset=True)
        xs = np.stack([image.numpy() for image, _ in ds])
        np.testing.assert_array_equal(xs, arrays["x2"])
        with open(tmp_path / method / "level_2" / "manifest.json") as f:
            assert json.load(f)["algorithm"]["method"] == method
        assert os.path.isfile(tmp_path / method / "similarity.png")
