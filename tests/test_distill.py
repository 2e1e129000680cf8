"""Fast tests of tn_keras.distill on a tiny model and small synthetic data (any backend)."""
import json
import math
import os

import keras
import numpy as np
import pytest

from tn_keras import distill as D
from tn_keras.distill import level_files
from tn_keras.distill.similarity import class_similarity

NUM_CLASSES = 3
PER_CLASS = 16
SHAPE = (8, 8, 1)
FAST = dict(steps=3, learning_rate=2.0)

pytestmark = pytest.mark.backend_neutral


def tiny_model(embedding_name="embedding"):
    keras.utils.set_random_seed(0)
    inputs = keras.Input(SHAPE, name="image")
    x = keras.layers.Rescaling(1 / 255.0)(inputs)
    x = keras.layers.Conv2D(4, 3, padding="same", name="conv")(x)
    x = keras.layers.Flatten(name=embedding_name)(x)
    outputs = keras.layers.Dense(NUM_CLASSES, activation="softmax", name="logits")(x)
    model = keras.Model(inputs, outputs, name="tiny")
    model.compile("adam", "sparse_categorical_crossentropy")
    return model


def synthetic_data(per_class=PER_CLASS, seed=0):
    rng = np.random.default_rng(seed)
    x, y = [], []
    for c in range(NUM_CLASSES):
        base = rng.uniform(40, 215, size=SHAPE)  # each class has its own mean image
        x.append(np.clip(base + rng.normal(0, 30, size=(per_class,) + SHAPE), 0, 255))
        y.append(np.full(per_class, c))
    return np.concatenate(x).astype(np.uint8), np.concatenate(y).astype(np.int64)


@pytest.fixture(scope="module")
def model():
    return tiny_model()


@pytest.fixture(scope="module")
def data():
    return synthetic_data()


@pytest.fixture(scope="module")
def exported(model, data, tmp_path_factory):
    out = str(tmp_path_factory.mktemp("distill") / "export")
    levels = D.distill(model, *data, levels=4, export_dir=out, seed=1,
                       source={"dataset": "synthetic", "split": "train"},
                       model_info={"name": "tiny", "sha256": "abc"}, **FAST)
    return out, levels


# ------------------------------------------------------------------ similarity, Eq. (S3)


def direct_similarity(images):
    """Eq. (S3) as printed: a double loop over ordered pairs m != n of unit vectors."""
    v = [im.astype(np.float64).ravel() for im in images]
    v = [a / np.linalg.norm(a) for a in v]
    n = len(v)
    s = d = 0.0
    for m in range(n):
        for k in range(n):
            if m != k:
                s += v[m] @ v[k]
                d += (v[m] - v[k]) @ (v[m] - v[k])
    return s / (n * (n - 1)), d / (n * (n - 1))


@pytest.mark.parametrize("n", [2, 3, 7])
def test_similarity_matches_double_loop(n):
    images = np.random.default_rng(n).uniform(0, 255, size=(n, 5, 4, 3))
    s, d = class_similarity(images)
    s_ref, d_ref = direct_similarity(images)
    assert s == pytest.approx(s_ref, abs=1e-12)
    assert d == pytest.approx(d_ref, abs=1e-12)


def test_d_equals_two_minus_two_s(data):
    table = D.similarity(*data)
    assert sorted(table) == list(range(NUM_CLASSES))
    for row in table.values():
        assert row["n"] == PER_CLASS
        assert row["d"] == pytest.approx(2 - 2 * row["s"], abs=1e-12)


def test_similarity_single_image_is_nan_and_identical_images_are_one():
    table = D.similarity(np.ones((3, 2, 2, 1)), np.array([0, 0, 1]))
    assert table[0]["s"] == pytest.approx(1.0) and table[0]["d"] == pytest.approx(0.0)
    assert math.isnan(table[1]["s"]) and math.isnan(table[1]["d"])


def test_similarity_refuses_all_zero_image():
    with pytest.raises(ValueError, match="all zero"):
        D.similarity(np.zeros((2, 2, 2, 1)), np.array([0, 0]))


# ------------------------------------------------------------------ levels and export


def test_levels_and_counts(exported, data):
    _, levels = exported
    assert [lv.level for lv in levels] == [0, 1, 2, 3, 4]
    for lv, per_class in zip(levels, [16, 8, 4, 2, 1]):
        assert lv.images_per_class == {c: per_class for c in range(NUM_CLASSES)}
        assert lv.x.dtype == np.uint8 and lv.x.shape[1:] == SHAPE
        assert lv.y.dtype == np.int64
    # Level 0 is the real data itself (per_class=None: every image).
    x, y = data
    np.testing.assert_array_equal(np.sort(levels[0].x.reshape(len(x), -1), axis=0),
                                  np.sort(x.reshape(len(x), -1), axis=0))


def test_similarity_rises_and_distance_falls_level_to_level(exported):
    # Eq. (S3) under the default method: s rises and d falls (the last level has one image
    # per class: no pairs).
    _, levels = exported
    for c in range(NUM_CLASSES):
        s = [lv.similarity[c]["s"] for lv in levels[:-1]]
        d = [lv.similarity[c]["d"] for lv in levels[:-1]]
        assert all(b > a for a, b in zip(s, s[1:])), s
        assert all(b < a for a, b in zip(d, d[1:])), d


def test_odd_sizes_leftover_joins_last_group(model):
    x, y = synthetic_data(per_class=7)
    levels = D.distill(model, x, y, levels=2, **FAST)
    assert [lv.images_per_class[0] for lv in levels] == [7, 3, 1]


def test_per_class_subset_is_seeded(model):
    x, y = synthetic_data(per_class=10)
    a = D.distill(model, x, y, levels=0, per_class=4, seed=3)[0]
    b = D.distill(model, x, y, levels=0, per_class=4, seed=3)[0]
    c = D.distill(model, x, y, levels=0, per_class=4, seed=4)[0]
    np.testing.assert_array_equal(a.x, b.x)
    assert a.images_per_class == {0: 4, 1: 4, 2: 4}
    assert not np.array_equal(a.x, c.x)


def test_export_layout_and_manifest(exported):
    out, levels = exported
    assert sorted(os.listdir(out)) == ["level_0", "level_1", "level_2", "level_3", "level_4",
                                       "similarity.png", "summary.json"]
    folder = os.path.join(out, "level_2")
    names = set(os.listdir(folder))
    assert names == {"images.npz", "manifest.json", "class_0.png", "class_1.png", "class_2.png"}
    with open(os.path.join(folder, "manifest.json")) as f:
        m = json.load(f)
    assert m["level"] == 2
    assert m["images_per_class"] == {"0": 4, "1": 4, "2": 4}
    assert m["source"] == {"dataset": "synthetic", "split": "train"}
    assert m["model"]["name"] == "tiny" and m["model"]["sha256"] == "abc"
    assert "0..255" in m["preprocessing"]
    assert m["algorithm"]["group_size"] == 2 and m["algorithm"]["steps"] == FAST["steps"]
    assert m["seed"] == 1
    assert set(m["similarity"]) == {"0", "1", "2"}
    assert set(m["similarity"]["0"]) == {"s", "d", "n"}
    # Every file but the manifest is listed with its sha256.
    listed = set(m["files"])
    on_disk = {os.path.relpath(os.path.join(r, n), folder).replace(os.sep, "/")
               for r, _, fs in os.walk(folder) for n in fs} - {"manifest.json"}
    assert listed == on_disk
    assert D.verify_level(folder) is not None
    # Level 4 has one image per class: s and d are undefined, stored as null.
    with open(os.path.join(out, "level_4", "manifest.json")) as f:
        assert json.load(f)["similarity"]["0"]["s"] is None


def test_load_level_arrays(exported):
    out, levels = exported
    x, y = D.load_level(out, 1)
    np.testing.assert_array_equal(x, levels[1].x)
    np.testing.assert_array_equal(y, levels[1].y)
    with pytest.raises(FileNotFoundError, match="No level 9"):
        D.load_level(out, 9)


def test_load_level_as_a_tf_dataset(exported):
    pytest.importorskip("tensorflow")
    out, levels = exported
    ds = D.load_level(out, 1, as_dataset=True)
    xs, ys = zip(*[(a.numpy(), b.numpy()) for a, b in ds])
    np.testing.assert_array_equal(np.stack(xs), levels[1].x)
    np.testing.assert_array_equal(np.array(ys), levels[1].y)


def test_existing_export_refused_without_resume_or_overwrite(exported, model, data):
    out, _ = exported
    before = sorted(os.listdir(out))
    with pytest.raises(FileExistsError, match="resume"):
        D.distill(model, *data, levels=1, export_dir=out, **FAST)
    assert sorted(os.listdir(out)) == before


def test_overwrite_replaces(model, data, tmp_path):
    out = str(tmp_path / "e")
    D.distill(model, *data, levels=1, export_dir=out, seed=0, **FAST)
    D.distill(model, *data, levels=1, export_dir=out, seed=5, overwrite=True, **FAST)
    with open(os.path.join(out, "level_1", "manifest.json")) as f:
        assert json.load(f)["seed"] == 5


def test_overwrite_with_fewer_levels_leaves_no_older_level(model, data, tmp_path):
    """Issue #13, case 4: the old run's deeper levels must not survive an overwrite."""
    out = str(tmp_path / "e")
    D.distill(model, *data, levels=3, export_dir=out, **FAST)
    D.distill(model, *data, levels=1, export_dir=out, overwrite=True, **FAST)
    assert sorted(os.listdir(out)) == ["level_0", "level_1", "similarity.png", "summary.json"]
    with pytest.raises(FileNotFoundError, match="No level 3"):
        D.load_level(out, 3)
    assert [p for p in os.listdir(tmp_path) if p.startswith(".")] == []  # no trash, no lock


def test_overwrite_refuses_a_folder_with_foreign_files(model, data, tmp_path):
    out = tmp_path / "e"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="notes.txt"):
        D.distill(model, *data, levels=1, export_dir=str(out), overwrite=True, **FAST)
    assert (out / "notes.txt").read_text() == "mine"


def test_a_killed_runs_temporary_level_is_removed_on_resume(model, data, tmp_path):
    out = str(tmp_path / "e")
    D.distill(model, *data, levels=1, export_dir=out, **FAST)
    os.makedirs(os.path.join(out, ".tmp-level_2-abc123"))  # what kill -9 leaves mid-write
    D.distill(model, *data, levels=2, export_dir=out, resume=True, **FAST)
    assert not [p for p in os.listdir(out) if p.startswith(".")]


def test_a_second_run_on_a_locked_export_fails_at_once(model, data, tmp_path):
    from tn_keras.utils import locks

    out = str(tmp_path / "e")
    with locks.locked(out, "another distillation"):
        with pytest.raises(locks.OutputLockedError):
            D.distill(model, *data, levels=1, export_dir=out, **FAST)
    assert not os.path.exists(out)


def test_interrupted_run_leaves_only_complete_levels_and_resume_finishes(
        model, data, tmp_path, monkeypatch):
    out = str(tmp_path / "e")
    real_write = level_files.write_level

    def crash_in_level_2(export_dir, level, *args, **kwargs):
        if level.level == 2:
            # Simulate a kill half-way through writing level 2: inside the temporary folder.
            def boom(*a, **k):
                raise KeyboardInterrupt("simulated interruption")
            monkeypatch.setattr(level_files, "contact_sheet", boom)
        return real_write(export_dir, level, *args, **kwargs)

    monkeypatch.setattr(level_files, "write_level", crash_in_level_2)
    with pytest.raises(KeyboardInterrupt):
        D.distill(model, *data, levels=3, export_dir=out, **FAST)
    monkeypatch.undo()
    # Only the complete levels, no temporary folder left behind.
    assert sorted(os.listdir(out)) == ["level_0", "level_1"]
    for a in (0, 1):
        assert D.verify_level(os.path.join(out, f"level_{a}")) is not None

    levels = D.distill(model, *data, levels=3, export_dir=out, resume=True, **FAST)
    assert [lv.reused for lv in levels] == [True, True, False, False]
    # The resumed result equals an uninterrupted run (seeded grouping, uint8 hand-over).
    fresh = D.distill(model, *data, levels=3, **FAST)
    for a, b in zip(levels, fresh):
        np.testing.assert_array_equal(a.x, b.x)


def test_resume_recomputes_a_corrupted_level(model, data, tmp_path):
    out = str(tmp_path / "e")
    D.distill(model, *data, levels=2, export_dir=out, **FAST)
    with open(os.path.join(out, "level_1", "class_0.png"), "ab") as f:
        f.write(b"corrupt")
    assert D.verify_level(os.path.join(out, "level_1")) is None
    with pytest.raises(ValueError, match="sha256"):
        D.load_level(out, 1)
    levels = D.distill(model, *data, levels=2, export_dir=out, resume=True, **FAST)
    assert [lv.reused for lv in levels] == [True, False, False]
    assert D.verify_level(os.path.join(out, "level_1")) is not None


def test_resume_with_other_settings_is_an_error(model, data, tmp_path):
    out = str(tmp_path / "e")
    D.distill(model, *data, levels=1, export_dir=out, **FAST)
    with pytest.raises(ValueError, match="different settings"):
        D.distill(model, *data, levels=1, export_dir=out, resume=True, steps=4)


# ------------------------------------------------------------------ bad input, before any work


@pytest.mark.parametrize("make_bad, match", [
    (lambda x, y: (x, y[:-1]), "47 labels"),
    (lambda x, y: (x, y.astype(np.float32) + 0.5), "integer class indices"),
    (lambda x, y: (x, y.astype(str)), "integer class indices"),
    (lambda x, y: (x, np.where(y == 2, 7, y)), "out of range"),
    (lambda x, y: (x, y - 1), ">= 0"),
    (lambda x, y: (np.where(np.arange(x.size).reshape(x.shape) == 5, np.nan,
                            x.astype(np.float32)), y), "NaN or inf"),
    (lambda x, y: (np.where(np.arange(x.size).reshape(x.shape) == 5, np.inf,
                            x.astype(np.float32)), y), "NaN or inf"),
    (lambda x, y: (x.astype(np.float32) * 2, y), r"\[0, 255\]"),
    (lambda x, y: (x.astype(np.float32) / 255, y), r"scaled to 0..1.*multiply them by 255"),
    (lambda x, y: (x[..., 0], y), r"\(N, H, W, C\)"),
])
def test_bad_data_is_refused_before_any_work(model, data, tmp_path, make_bad, match):
    out = str(tmp_path / "never")
    with pytest.raises(ValueError, match=match):
        D.distill(model, *make_bad(*data), levels=1, export_dir=out, **FAST)
    assert not os.path.exists(out)


def test_class_smaller_than_a_group(model, data, tmp_path):
    x, y = data
    keep = np.concatenate([np.flatnonzero(y != 1), np.flatnonzero(y == 1)[:2]])
    with pytest.raises(ValueError, match="Class 1 has 2 image.*group_size=3"):
        D.distill(model, x[keep], y[keep], levels=1, group_size=3,
                  export_dir=str(tmp_path / "never"))
    assert not os.path.exists(tmp_path / "never")


def test_too_many_levels(model, data):
    with pytest.raises(ValueError, match=r"levels=5 .* at most 4 level.*16 -> 8 -> 4 -> 2 -> 1"):
        D.distill(model, *data, levels=5)
    with pytest.raises(ValueError, match="fewer than per_class=20"):
        D.distill(model, *data, levels=1, per_class=20)


def test_model_without_embedding_layer(data, tmp_path):
    model = tiny_model(embedding_name="flatten_features")
    with pytest.raises(ValueError, match=r"no layer named 'embedding'.*'flatten_features'"):
        D.distill(model, *data, levels=1, export_dir=str(tmp_path / "never"))
    assert not os.path.exists(tmp_path / "never")
    # ... and naming another layer works.
    assert len(D.distill(model, *data, levels=1, embedding_layer="conv", **FAST)) == 2


def test_image_shape_mismatch(model):
    with pytest.raises(ValueError, match="the model takes"):
        D.distill(model, np.zeros((4, 9, 9, 1), np.uint8), np.array([0, 0, 1, 1]), levels=1)


# ------------------------------------------------------------------ callback, evaluation, CLI


def test_callback_runs_inside_fit(data, tmp_path):
    model = tiny_model()
    x, y = data
    out = str(tmp_path / "cb")
    cb = D.MultiLevelDistillation((x, y), settings=D.DistillConfig(levels=2, **FAST),
                                  export=D.LevelExportConfig(directory=out), every_n_epochs=1)
    model.fit(x.astype(np.float32), y, epochs=2, batch_size=16, verbose=0, callbacks=[cb])
    assert [lv.level for lv in cb.levels] == [0, 1, 2]
    assert sorted(cb.history) == [1, 2]
    for a in range(3):
        assert D.verify_level(os.path.join(out, f"level_{a}")) is not None
        assert D.verify_level(os.path.join(out, "epoch_0001", f"level_{a}")) is not None


def test_callback_takes_the_old_keywords(data, tmp_path):
    x, y = data
    cb = D.MultiLevelDistillation((x, y), levels=2, export_dir=str(tmp_path / "cb"), seed=3,
                                  **FAST)
    assert (cb.settings.levels, cb.settings.seed, cb.settings.steps) == (2, 3, FAST["steps"])
    assert cb.export.directory == str(tmp_path / "cb")


def test_callback_validates_at_construction(data):
    x, y = data
    with pytest.raises(ValueError, match="at most 4"):
        D.MultiLevelDistillation((x, y), levels=9, export_dir="unused")
    with pytest.raises(ValueError, match="labels"):
        D.MultiLevelDistillation((x, y[:3]), levels=1, export_dir="unused")


def test_reference_classification_and_train_from_scratch(model, exported, data):
    _, levels = exported
    x, y = data
    ref = D.reference_classification(model, levels[1].x, levels[1].y, x, y)
    assert set(ref) == {"nearest", "class_mean", "references"}
    assert 0 <= ref["nearest"] <= 1 and ref["references"] == 24
    # Well-separated classes: the class means classify their own data.
    assert ref["class_mean"] > 0.9
    res = D.train_from_scratch(levels[1].x, levels[1].y, x, y, seeds=(0, 1), steps=2)
    assert len(res["accuracies"]) == 2 and res["images"] == 24
    assert res["std"] >= 0


def test_similarity_plot(tmp_path):
    from PIL import Image

    table = {0: {0: {"s": 0.5, "d": 1.0}}, 1: {0: {"s": 0.7, "d": 0.6}},
             2: {0: {"s": float("nan"), "d": float("nan")}}}
    path = str(tmp_path / "s.png")
    D.plot_similarity(table, path)
    assert Image.open(path).size == (900, 400)


def test_cli_refuses_existing_folder_before_loading(tmp_path, capsys):
    from tn_keras.cli import main

    out = tmp_path / "exists"
    out.mkdir()
    code = main(["distill", "digits_taylornet", "--levels", "1", "--out", str(out),
                 "--weights", str(tmp_path / "no_such_checkpoint")])
    assert code == 2
    assert "already exists" in capsys.readouterr().err
