"""Distillation of a small real MNIST subset: Eq. (S3) s rises and d falls for every class.

Uses the zoo's pretrained mnist_taylornet when one exists; otherwise trains a small model for
one epoch on 6 k images (about 20-50 s on 2 busy cores): the claim is about the distillation, and a
~97 % model already gives it a meaningful embedding.
"""
import os

import numpy as np
import pytest

from tn_keras import datasets
from tn_keras import distill as D
from tn_keras import zoo

pytestmark = [pytest.mark.real_data, pytest.mark.slow]


@pytest.fixture(scope="module")
def mnist_model(real_data_dir, tmp_path_factory):
    if zoo.list("mnist_taylornet", pretrained=True):
        return zoo.load("mnist_taylornet", compile=False)
    from tn_keras.training import train

    out = str(tmp_path_factory.mktemp("mnist_model"))
    model, _ = train("mnist_taylornet", epochs=1, out=out, data_dir=real_data_dir,
                     max_train_examples=6000, max_eval_examples=500, verbose=0)
    return model


def test_mnist_similarity_rises_and_distance_falls(mnist_model, real_data_dir, tmp_path):
    x, y = datasets.load("mnist", "train", data_dir=real_data_dir)
    out = str(tmp_path / "export")
    # 16 per class -> 8 -> 4 -> 2: every level still has pairs, so s and d are defined.
    levels = D.distill(mnist_model, x, y, levels=3, per_class=16, steps=30, export_dir=out,
                       source={"dataset": "mnist", "split": "train"})
    assert [lv.images_per_class[0] for lv in levels] == [16, 8, 4, 2]
    for c in range(10):
        s = [lv.similarity[c]["s"] for lv in levels]
        d = [lv.similarity[c]["d"] for lv in levels]
        assert all(b > a for a, b in zip(s, s[1:])), f"class {c}: s = {s}"
        assert all(b < a for a, b in zip(d, d[1:])), f"class {c}: d = {d}"
        np.testing.assert_allclose(d, 2 - 2 * np.array(s), atol=1e-9)
    x2, y2 = D.load_level(out, 3)
    assert x2.shape == (20, 28, 28, 1) and x2.dtype == np.uint8
    assert os.path.isfile(os.path.join(out, "similarity.png"))
    # The distilled references still classify real test images far above chance.
    tx, ty = datasets.load("mnist", "test", data_dir=real_data_dir)
    ref = D.reference_classification(mnist_model, x2, y2, tx[:500], ty[:500])
    assert ref["class_mean"] > 0.5
