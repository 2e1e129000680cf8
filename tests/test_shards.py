"""Data shards: pack / load is byte-exact, every shard within the size limit, and a missing or
damaged shard is a one-line error naming it."""
import json
import os
import sys

import numpy as np
import pytest

from tn_keras import datasets
from tn_keras.datasets import codecs
from tn_keras.datasets import packing
from tn_keras.datasets import shards
from tn_keras.datasets.errors import DatasetFormatError

sys.path.insert(0, os.path.dirname(__file__))
from _no_tensorflow import stdout_without_tensorflow  # noqa: E402

pytestmark = pytest.mark.backend_neutral

LIMIT_MB = 0.004  # 4,000 bytes: several shards per array for the arrays below


@pytest.fixture
def cifar_folder(tmp_path, monkeypatch):
    """A small CIFAR-10-shaped npz with a lossless mask, and no other data source."""
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path / "no_tfds"))
    monkeypatch.delenv("TN_KERAS_DATA", raising=False)
    rng = np.random.default_rng(0)
    arrays = {
        "x_train": rng.integers(0, 256, (20, 32, 32, 3), dtype=np.uint8),
        "y_train": rng.integers(0, 10, 20).astype(np.int64),
        "x_test": (np.arange(8 * 32 * 32 * 3) % 7).astype(np.uint8).reshape(8, 32, 32, 3),
        "y_test": rng.integers(0, 10, 8).astype(np.int64),
        "test_is_lossless": np.array([1, 0, 1, 1, 0, 0, 1, 0], bool),
    }
    folder = tmp_path / "data"
    folder.mkdir()
    np.savez(folder / "cifar10.npz", **arrays)
    return str(folder), arrays


def _pack(cifar_folder, tmp_path, codec="zlib"):
    folder, _ = cifar_folder
    return packing.pack("cifar10", str(tmp_path / "packed"), LIMIT_MB, data_dir=folder,
                        offline=True, codec=codec)


@pytest.mark.parametrize("codec", sorted(codecs.CODECS))
def test_round_trip_is_byte_exact_and_shards_respect_the_limit(cifar_folder, tmp_path, codec):
    folder, arrays = cifar_folder
    index = _pack(cifar_folder, tmp_path, codec)
    assert index == str(tmp_path / "packed" / "cifar10.shards" / "index.json")
    with open(index) as f:
        entries = json.load(f)["arrays"]
    assert set(entries) == set(arrays)
    assert len(entries["x_train"]["shards"]) > 1  # really split
    for entry in entries.values():
        for shard in entry["shards"]:
            size = os.path.getsize(os.path.join(os.path.dirname(index), shard["file"]))
            assert size == shard["bytes"] <= LIMIT_MB * shards.MEGABYTE
    for split in ("train", "test", "test_lossless"):
        x, y = datasets.load("cifar10", split, data_dir=str(tmp_path / "packed"), offline=True)
        x0, y0 = datasets.load("cifar10", split, data_dir=folder, offline=True)
        assert x.dtype == x0.dtype and y.dtype == y0.dtype
        assert x.tobytes() == x0.tobytes() and y.tobytes() == y0.tobytes()
    np.testing.assert_array_equal(shards.read(index)["test_is_lossless"],
                                  arrays["test_is_lossless"])


@pytest.mark.slow
def test_a_fresh_process_without_tensorflow_reads_the_shards(cifar_folder, tmp_path):
    folder, arrays = cifar_folder
    _pack(cifar_folder, tmp_path)
    stdout = stdout_without_tensorflow(f"""
        import hashlib
        from tn_keras import datasets
        x, y = datasets.load("cifar10", "train")
        print(hashlib.sha256(x.tobytes() + y.tobytes()).hexdigest())
    """, env={"TN_KERAS_DATA": str(tmp_path / "packed"),
              "TFDS_DATA_DIR": str(tmp_path / "no_tfds")}, timeout=300)
    import hashlib

    expected = hashlib.sha256(arrays["x_train"].tobytes() + arrays["y_train"].tobytes())
    assert stdout.split()[-1] == expected.hexdigest()


def test_corrupted_shard_is_named(cifar_folder, tmp_path):
    index = _pack(cifar_folder, tmp_path)
    victim = os.path.join(os.path.dirname(index), "x_train-00001.zlib")
    with open(victim, "r+b") as f:
        f.seek(10)
        byte = f.read(1)
        f.seek(10)
        f.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(DatasetFormatError, match=r"x_train-00001\.zlib: shard corrupted"):
        datasets.load("cifar10", "train", data_dir=str(tmp_path / "packed"), offline=True)


def test_missing_shard_is_named(cifar_folder, tmp_path):
    index = _pack(cifar_folder, tmp_path)
    os.remove(os.path.join(os.path.dirname(index), "y_test-00000.zlib"))
    with pytest.raises(DatasetFormatError, match=r"y_test-00000\.zlib: shard missing"):
        shards.read(index)


def test_existing_pack_refused_and_derived_datasets_need_none(cifar_folder, tmp_path):
    _pack(cifar_folder, tmp_path)
    with pytest.raises(FileExistsError, match="overwrite"):
        _pack(cifar_folder, tmp_path)
    with pytest.raises(ValueError, match="scikit-learn"):
        packing.pack("digits", str(tmp_path / "d"), 1)
    with pytest.raises(ValueError, match="max_shard_mb"):
        packing.pack("cifar10", str(tmp_path / "e"), 0)


def test_cli_pack_and_verify(cifar_folder, tmp_path, capsys):
    from tn_keras.cli import main

    folder, _ = cifar_folder
    out = str(tmp_path / "cli")
    assert main(["data", "pack", "cifar10", "--out", out, "--max-shard-mb", "0.01",
                 "--data-dir", folder]) == 0
    assert f"TN_KERAS_DATA={out}" in capsys.readouterr().out
    assert main(["data", "verify", os.path.join(out, "cifar10.shards")]) == 0
    assert "all shards verified" in capsys.readouterr().out
    os.remove(os.path.join(out, "cifar10.shards", "x_test-00000.zlib"))
    assert main(["data", "verify", os.path.join(out, "cifar10.shards")]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and "x_test-00000.zlib: shard missing" in error[0]


@pytest.mark.slow
@pytest.mark.real_data
def test_real_mnist_round_trip(real_data_dir, tmp_path):
    packing.pack("mnist", str(tmp_path), 5, data_dir=real_data_dir, offline=True)
    assert len(os.listdir(tmp_path / "mnist.shards")) > 4  # 47 MB raw in shards of <= 5 MB
    for split in ("train", "test"):
        x, y = datasets.load("mnist", split, data_dir=str(tmp_path), offline=True)
        x0, y0 = datasets.load("mnist", split, data_dir=real_data_dir, offline=True)
        assert x.tobytes() == x0.tobytes() and y.tobytes() == y0.tobytes()


def _smooth_images(shape, seed=0):
    """Images like photographs at small scale: smooth gradients plus a little noise."""
    rng = np.random.default_rng(seed)
    n, h, w = shape[:3]
    ramp = np.add.outer(np.arange(h), np.arange(w))[None] * rng.uniform(0.5, 3, (n, 1, 1))
    base = ramp[..., None] if len(shape) == 4 else ramp
    noise = rng.normal(0, 2, shape)
    return np.clip(base + noise + 40, 0, 255).astype(np.uint8)


@pytest.mark.parametrize("shape", [(5, 7, 9), (4, 8, 6, 1), (3, 8, 8, 3), (0, 4, 4, 3)])
def test_image_prediction_is_exactly_invertible(shape):
    rng = np.random.default_rng(1)
    for images in (rng.integers(0, 256, shape, dtype=np.uint8), _smooth_images(shape)):
        residual = codecs.predict_residuals(images)
        np.testing.assert_array_equal(codecs.rebuild_images(residual, shape), images)


def test_plane_predictor_residual_matches_a_direct_computation():
    images = np.random.default_rng(2).integers(0, 256, (2, 5, 6, 3), dtype=np.uint8)
    p = np.pad(images.astype(np.int64), ((0, 0), (1, 0), (1, 0), (0, 0)))  # zero row/column
    plane = p[:, 1:, 1:] - p[:, 1:, :-1] - p[:, :-1, 1:] + p[:, :-1, :-1]
    expected = plane.copy()
    expected[..., 0] -= plane[..., 1]
    expected[..., 2] -= plane[..., 1]
    np.testing.assert_array_equal(codecs.predict_residuals(images),
                                  (expected % 256).transpose(0, 3, 1, 2))


@pytest.mark.parametrize("codec", sorted(codecs.CODECS))
@pytest.mark.parametrize("array", [np.arange(12, dtype=np.int64).reshape(4, 3),
                                   np.array([True, False, True]),
                                   _smooth_images((3, 8, 8, 3))])
def test_every_codec_round_trips_every_array(codec, array):
    encode, decode = codecs.CODECS[codec]
    np.testing.assert_array_equal(decode(encode(array), array.dtype, array.shape), array)


def test_image_lzma_beats_zlib_on_smooth_images():
    images = _smooth_images((64, 32, 32, 3))
    sizes = {name: len(encode(images)) for name, (encode, _) in codecs.CODECS.items()}
    assert sizes["image-lzma"] < 0.8 * sizes["zlib"], sizes


def test_a_decoded_length_that_disagrees_with_the_index_is_named(cifar_folder, tmp_path):
    index = _pack(cifar_folder, tmp_path, "image-lzma")
    with open(index) as f:
        content = json.load(f)
    content["arrays"]["y_train"]["shape"] = [20, 2]  # sha256 still matches: the index lies
    with open(index, "w") as f:
        json.dump(content, f)
    with pytest.raises(DatasetFormatError, match=r"y_train-00000\.xz: decoded"):
        shards.read(index)


def test_an_unknown_codec_is_refused(cifar_folder, tmp_path):
    with pytest.raises(ValueError, match="codec must be one of"):
        _pack(cifar_folder, tmp_path, "gzip")


def test_imports_run_one_way():
    """The loader reads shards; packing reads through the loader and writes shards: `shards`
    imports neither of the two modules above it (no circle)."""
    import ast
    import inspect

    imported = set()
    for node in ast.walk(ast.parse(inspect.getsource(shards))):
        if isinstance(node, ast.ImportFrom):
            imported |= {f"{node.module}.{a.name}" for a in node.names} | {node.module}
        elif isinstance(node, ast.Import):
            imported |= {a.name for a in node.names}
    assert not {m for m in imported if m.endswith((".loader", ".packing"))}, imported
    assert not hasattr(shards, "pack") and packing.dataset_arrays
