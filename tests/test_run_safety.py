"""Backups that fall back, folders training did not write, and export recovery that touches
only its own staging folders (issue 27). Fast: a 3-weight Keras model, no dataset."""
import glob
import hashlib
import json
import os

import keras
import numpy as np
import pytest

from tn_keras.export import staging
from tn_keras.training import TrainConfig
from tn_keras.training import backup
from tn_keras.training.backup import CrashSafeBackup


def _model():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    model.compile(optimizer="adam",
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def _fit(folder, epochs):
    """A fresh model fitted with a backup in ``folder``; returns ``(model, epochs run)``."""
    rng = np.random.default_rng(0)
    x, y = rng.random((16, 4), dtype="float32"), rng.integers(0, 3, 16)
    model = _model()
    ran = []  # not len(history): with no epoch left, the backup gives the History its logs
    counter = keras.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: ran.append(epoch))
    model.fit(x, y, epochs=epochs, batch_size=8, verbose=0, shuffle=False,
              callbacks=[CrashSafeBackup(str(folder)), counter])
    return model, len(ran)


def _state(folder):
    return json.loads((folder / "state.json").read_text())


def _weights_files(folder):
    return sorted(os.path.basename(p) for p in glob.glob(str(folder / "epoch-*.weights.h5")))


def test_the_last_two_complete_backups_are_kept(tmp_path):
    folder = tmp_path / "backup"
    _fit(folder, 3)
    state = _state(folder)
    assert (state["epoch"], state["previous"]["epoch"]) == (3, 2)
    assert _weights_files(folder) == ["epoch-00002.weights.h5", "epoch-00003.weights.h5"]
    for entry in (state, state["previous"]):
        data = (folder / entry["weights"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == entry["sha256"]


@pytest.mark.parametrize("damage", ["truncated", "missing", "changed"])
def test_a_damaged_newest_backup_falls_back_to_the_one_before(damage, tmp_path, capsys):
    folder = tmp_path / "backup"
    _fit(folder, 3)
    newest = folder / "epoch-00003.weights.h5"
    if damage == "truncated":
        newest.write_bytes(b"")  # what a kill during the write can leave
    elif damage == "missing":
        newest.unlink()
    else:
        newest.write_bytes(newest.read_bytes()[:-1] + b"x")
    capsys.readouterr()
    # Nothing left to train up to epoch 2: the model is exactly the epoch-2 backup.
    model, ran = _fit(folder, 2)
    lines = capsys.readouterr().err.strip().splitlines()
    assert ran == 0 and len(lines) == 1, lines
    assert "epoch-00003" in lines[0] and "epoch-00002" in lines[0]
    expected = _model()
    expected.optimizer.build(expected.trainable_variables)
    expected.load_weights(str(folder / "epoch-00002.weights.h5"))
    for got, want in zip(model.get_weights(), expected.get_weights()):
        np.testing.assert_array_equal(got, want)
    # Resumed to the end: epoch 3 runs again, and the backups are whole again.
    _, ran = _fit(folder, 3)
    assert ran == 1 and _state(folder)["previous"]["epoch"] == 2
    assert _weights_files(folder) == ["epoch-00002.weights.h5", "epoch-00003.weights.h5"]


def test_no_intact_backup_is_one_error_naming_both(tmp_path):
    folder = tmp_path / "backup"
    _fit(folder, 2)
    for name in _weights_files(folder):
        (folder / name).write_bytes(b"")
    with pytest.raises(ValueError, match="epoch-00002.*epoch-00001.*--overwrite"):
        _fit(folder, 3)


def test_a_diverged_epoch_is_not_backed_up_and_stops_fit(tmp_path):
    """Issue 27: weights that became NaN in epoch 2 leave epoch 1's backup the newest."""
    folder = tmp_path / "backup"
    rng = np.random.default_rng(0)
    x, y = rng.random((16, 4), dtype="float32"), rng.integers(0, 3, 16)
    model = _model()

    def poison(epoch, logs):
        if epoch == 1:  # before the backup's on_epoch_end: the callbacks run in order
            model.layers[0].kernel.assign(np.full((4, 3), np.nan, "float32"))

    saver = CrashSafeBackup(str(folder))
    history = model.fit(x, y, epochs=3, batch_size=8, verbose=0, shuffle=False, callbacks=[
        keras.callbacks.LambdaCallback(on_epoch_end=poison), saver])
    assert len(history.epoch) == 2 and saver.diverged_epoch == 2
    assert _state(folder)["epoch"] == 1 and _weights_files(folder) == ["epoch-00001.weights.h5"]
    assert backup.non_finite_weight(model) == model.layers[0].kernel.path
    assert backup.non_finite_weight(_model()) is None


def test_resume_without_the_keras_hook_fails_loudly():
    with pytest.raises(RuntimeError, match="_initial_epoch"):
        backup._start_fit_at(object(), 2)
    assert hasattr(_model(), "_initial_epoch")  # the Keras tested with has it


def _interrupted_run(out, epochs_logged):
    """A training folder whose newest backup (epoch 2) is damaged and whose previous (epoch
    1) is whole, with a log of ``epochs_logged`` rows."""
    folder = out / backup.BACKUP_DIR
    folder.mkdir(parents=True)
    config = TrainConfig(epochs=5, batch_size=64, max_train_examples=32, resume=True)
    (folder / backup.RUN_FILE).write_text(json.dumps(
        backup.run_settings("digits_taylornet", config)))
    (folder / "epoch-00001.weights.h5").write_bytes(b"one")
    (folder / "epoch-00002.weights.h5").write_bytes(b"")
    sha = hashlib.sha256(b"one").hexdigest()
    (folder / backup.STATE_FILE).write_text(json.dumps({
        "epoch": 2, "weights": "epoch-00002.weights.h5", "sha256": "0" * 64,
        "previous": {"epoch": 1, "weights": "epoch-00001.weights.h5", "sha256": sha}}))
    rows = "".join(f"{e},0.5\n" for e in range(epochs_logged))
    (out / backup.LOG_FILE).write_text("epoch,loss\n" + rows)
    return config


def test_resume_keeps_the_log_rows_of_the_backup_it_falls_back_to(tmp_path):
    out = tmp_path / "run"
    config = _interrupted_run(out, 3)
    assert backup.prepare_output(str(out), "digits_taylornet", config) is None
    assert (out / backup.LOG_FILE).read_text() == "epoch,loss\n0,0.5\n"


def test_overwrite_through_a_symbolic_link_keeps_the_link(tmp_path):
    out = tmp_path / "o"
    out.mkdir()
    (out / "manifest.json").write_text(json.dumps({"kind": "checkpoint"}))
    (out / "digits_taylornet.keras").write_bytes(b"old")
    link = tmp_path / "L"
    os.symlink("o", link)
    config = TrainConfig(epochs=1, overwrite=True)
    assert backup.prepare_output(str(link), "digits_taylornet", config) is None
    assert os.path.islink(link) and sorted(os.listdir(out)) == [backup.BACKUP_DIR]
    assert [p for p in os.listdir(tmp_path) if p.startswith(".")] == []  # no trash left


def test_a_folder_not_written_by_training_is_refused_even_with_overwrite(tmp_path):
    out = tmp_path / "o"
    out.mkdir()
    (out / "README.md").write_text("mine")  # named like a model card, but a user's
    for config in (TrainConfig(epochs=1), TrainConfig(epochs=1, overwrite=True),
                   TrainConfig(epochs=1, resume=True)):
        with pytest.raises(FileExistsError, match="README.md"):
            backup.prepare_output(str(out), "digits_taylornet", config)
    assert os.listdir(out) == ["README.md"]


def test_export_recovery_matches_its_own_staging_folders_only(tmp_path):
    ours = tmp_path / ".tmp-export-m-abc_1234"
    theirs = tmp_path / ".tmp-export-m-int8.tflite-abc_1234"  # the export to m-int8.tflite
    for folder in (ours, theirs):
        folder.mkdir()
    done = staging.recover(str(tmp_path / "m"))
    assert done == [f"removed {ours}"] and theirs.is_dir()
