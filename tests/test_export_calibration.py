"""Calibrating a quantised export on a distilled level (synthetic data)."""
import os

import numpy as np
import pytest

from test_distill import FAST
from test_distill import synthetic_data
from test_distill import tiny_model
from tn_keras import distill
from tn_keras.export import TFLiteModel
from tn_keras.export import export
from tn_keras.utils.files import sha256_file


@pytest.fixture(scope="module")
def level_one(tmp_path_factory):
    """A distilled export of the synthetic data; the path of its level 1 (8 images per class)."""
    out = str(tmp_path_factory.mktemp("distilled") / "export")
    distill.distill(tiny_model(), *synthetic_data(), levels=1, export_dir=out, seed=1, **FAST)
    return os.path.join(out, "level_1")


def test_int8_export_calibrates_on_a_distilled_level(level_one, tmp_path):
    model = tiny_model()
    path = str(tmp_path / "m.tflite")
    manifest = export(model, path, format="tflite_int8", representative_data=level_one)
    calibration = manifest["quantization"]["calibration"]
    x, _ = distill.load_level(os.path.dirname(level_one), 1)
    assert calibration["images_from"] == "distilled level 1 (level_1)"
    assert calibration["num_images"] == len(x) == 24
    assert calibration["images_sha256"] == sha256_file(os.path.join(level_one, "images.npz"))
    got = TFLiteModel(path).predict(x.astype("float32")).argmax(-1)
    assert np.mean(got == model.predict(x, verbose=0).argmax(-1)) >= 0.9


def test_a_tampered_level_is_refused(level_one, tmp_path):
    import shutil

    copy = str(tmp_path / "copy" / "level_1")
    shutil.copytree(level_one, copy)
    with np.load(os.path.join(copy, "images.npz")) as data:
        x, y = data["x"].copy(), data["y"]
    x[0, 0, 0, 0] ^= 1
    np.savez_compressed(os.path.join(copy, "images.npz"), x=x, y=y)
    with pytest.raises(ValueError, match="sha256"):
        export(tiny_model(), str(tmp_path / "m.tflite"), format="tflite_int8",
               representative_data=copy)
    assert not os.path.exists(tmp_path / "m.tflite")


def test_a_path_that_is_not_a_level_is_refused(tmp_path):
    with pytest.raises(ValueError, match=r"representative_data=.*level_<a>"):
        export(tiny_model(), str(tmp_path / "m.tflite"), format="tflite_int8",
               representative_data=str(tmp_path))
    with pytest.raises(FileNotFoundError, match="level_7"):
        export(tiny_model(), str(tmp_path / "m.tflite"), format="tflite_int8",
               representative_data=str(tmp_path / "level_7"))
