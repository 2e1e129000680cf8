"""Multi-formation (`tn_keras.datasets.multi_formation`): decoding against TensorFlow's resize, the
ops decoder against the NumPy one, encoding against block means, and a dm level stored as
slots and loaded as decoded images."""
import json
import os

import numpy as np
import pytest

from tn_keras import distill as D
from tn_keras.datasets import multi_formation as F
from tn_keras.distill.groups import group_members
from tn_keras.distill.groups import make_groups

from test_distill import synthetic_data

pytestmark = pytest.mark.backend_neutral

TINY = dict(method="dm", steps=2, real_batch=4, embedding_network="small", dsa=False)


@pytest.mark.parametrize("factor", [2, 4])
def test_decode_equals_bilinear_resize_of_each_tile(factor):
    tf = pytest.importorskip("tensorflow")
    rng = np.random.default_rng(0)
    slots = rng.uniform(0, 255, (3, 16, 8, 2)).astype(np.float32)
    labels = np.array([4, 7, 9])
    images, out_labels = F.decode(slots, labels, factor)
    h, w = 16 // factor, 8 // factor
    expected = []
    for slot in slots:  # tile (i, j) is image i * factor + j
        for i in range(factor):
            for j in range(factor):
                tile = slot[i * h:(i + 1) * h, j * w:(j + 1) * w]
                expected.append(tf.image.resize(tile, (16, 8), "bilinear").numpy())
    np.testing.assert_allclose(images, np.stack(expected), atol=1e-3)
    assert list(out_labels) == [4] * factor ** 2 + [7] * factor ** 2 + [9] * factor ** 2


def test_ops_decoder_equals_numpy_decoder():
    from keras import ops

    slots = np.random.default_rng(1).normal(size=(2, 8, 8, 3)).astype(np.float32)
    got = ops.convert_to_numpy(F.decode_ops(ops.convert_to_tensor(slots), 2))
    np.testing.assert_allclose(got, F.decode(slots, np.zeros(2), 2)[0], atol=1e-5)
    assert F.decode_ops(slots, 1) is slots


def test_encode_tiles_block_means_and_decodes_constants_exactly():
    rng = np.random.default_rng(2)
    images = rng.uniform(0, 255, (8, 6, 6, 1)).astype(np.float32)
    slots = F.encode(images, 2)
    assert slots.shape == (2, 6, 6, 1)
    # Tile (1, 0) of slot 1 is image 1 * 4 + 2 = 6, averaged over 2x2 blocks.
    block_mean = images[6].reshape(3, 2, 3, 2, 1).mean((1, 3))
    np.testing.assert_allclose(slots[1, 3:, :3], block_mean, rtol=1e-6)
    np.testing.assert_allclose(F.tiles(slots, 2)[6], block_mean, rtol=1e-6)
    flat = np.full((4, 6, 6, 1), 17.0, np.float32)
    np.testing.assert_allclose(F.decode(F.encode(flat, 2), np.zeros(1), 2)[0], flat[:4])


@pytest.mark.parametrize("change, message", [
    (dict(formation=2, levels=2), "formation=2 makes one level from real images: pass levels=1"),
    (dict(formation=0), "formation must be a positive integer; got 0"),
    (dict(formation=True), "formation must be a positive integer; got True"),
])
def test_settings_refuse_bad_formation(change, message):
    settings = dict(TINY, levels=1)
    settings.update(change)
    with pytest.raises(ValueError, match=message):
        D.DistillConfig(**settings).resolved()


def test_formation_needs_method_dm_and_a_dividing_factor():
    with pytest.raises(ValueError, match="formation apply to method='dm' only"):
        D.DistillConfig(method="distribution", formation=2).resolved()
    x, y = synthetic_data()
    with pytest.raises(ValueError, match=r"formation=3 must divide the image size"):
        D.distill(None, x, y, levels=1, per_class=8, group_size=4, formation=3, **TINY)


def test_level_stores_slots_and_loads_decoded_images(tmp_path):
    x, y = synthetic_data()
    out = str(tmp_path / "mf")
    # No iteration: each slot is its group's four members, coarse-grained and tiled.
    levels = D.distill(None, x, y, levels=1, per_class=8, group_size=4, formation=2,
                       export_dir=out, seed=3, **dict(TINY, steps=0))
    level0, level1 = levels
    assert level1.images_per_class == {c: 2 for c in np.unique(y)}
    group_of, labels = make_groups(level0.y, 4, 3, 1)  # level 1's groups (seed 3)
    members = group_members(group_of, len(labels), 4).reshape(-1)
    expected = F.encode(level0.x[members], 2)
    # Within one grey level: the start goes through the normalised units and back.
    assert np.abs(level1.x.astype(np.float32) - expected).max() <= 1.0
    slots, slot_labels = D.load_level(out, 1, decode=False)
    np.testing.assert_array_equal(slots, level1.x)
    images, image_labels = D.load_level(out, 1)
    assert images.shape == (4 * len(slots),) + slots.shape[1:] and images.dtype == np.uint8
    assert list(image_labels) == list(np.repeat(slot_labels, 4))
    with open(os.path.join(out, "level_1", "manifest.json")) as f:
        assert json.load(f)["algorithm"]["formation"] == 2


def test_matching_moves_the_slots_through_the_decoder(tmp_path):
    x, y = synthetic_data()
    levels = D.distill(None, x, y, levels=1, per_class=8, group_size=4, formation=2, seed=3,
                       **dict(TINY, steps=3, learning_rate=5.0))
    start = D.distill(None, x, y, levels=1, per_class=8, group_size=4, formation=2, seed=3,
                      **dict(TINY, steps=0))
    assert levels[1].x.shape == start[1].x.shape
    assert np.abs(levels[1].x.astype(int) - start[1].x.astype(int)).max() > 0


def test_evaluation_baseline_is_random_real_in_the_same_format(tmp_path, monkeypatch):
    """benchmarks/eval_distilled_sets.py compares a multi-formation level with random real
    images stored the same way (f^2 coarse images a slot, decoded), not with full-size ones."""
    import importlib.util
    import types

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    monkeypatch.syspath_prepend(os.path.join(root, "benchmarks"))
    spec = importlib.util.spec_from_file_location(
        "eval_distilled_sets", os.path.join(root, "benchmarks", "eval_distilled_sets.py"))
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    x, y = synthetic_data()
    out = str(tmp_path / "mf")
    D.distill(None, x, y, levels=1, per_class=8, group_size=4, formation=2, export_dir=out,
              seed=3, **dict(TINY, steps=0))
    trained = []

    def fake_train_and_score(tx, ty, tests, seed, evaluator, steps):
        trained.append((np.asarray(tx), np.asarray(ty)))
        return {split: 0.5 for split in tests}

    monkeypatch.setattr(bench, "train_and_score", fake_train_and_score)
    args = types.SimpleNamespace(evaluator="small", steps=2)
    row = bench.evaluate_level(out, 1, (x, y), {"test": (x[:4], y[:4])}, (0,), args)
    (dx, dy), (rx, ry) = trained
    assert dx.shape == rx.shape == (4 * 2 * len(np.unique(y)),) + x.shape[1:]
    assert list(np.bincount(ry)) == list(np.bincount(dy))
    from tn_keras.distill.evaluation import random_real_subset

    real, real_labels = random_real_subset(x, y, 8, seed=0)  # the seed's draw, then the format
    expected = F.decode_to_uint8(F.encode(real, 2), real_labels[::4], 2)
    np.testing.assert_array_equal(rx, expected[0])
    np.testing.assert_array_equal(ry, expected[1])
    assert (row["formation"], row["images_per_class"], row["decoded_images_per_class"]) == (
        2, 2, 8)
    assert "stored 4 to a slot" in row["baseline"]
