"""kill -9 at chosen moments: nothing complete is lost, nothing incomplete accepted, no litter.

Each test starts a real ``tn-keras`` subprocess with ``$TN_KERAS_FAULT_POINT`` naming a kill
point (`tn_keras.utils.faults`): the process signals when it reaches that point and blocks
there until the test sends SIGKILL. Then the test resumes or reruns and checks the files.
``$TMPDIR`` is a folder of the test's own, so anything left in it is seen.
"""
import glob
import hashlib
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

LAUNCHER = "import sys, tn_keras_cli; sys.exit(tn_keras_cli.main())"
TRAIN = ["train", "digits_taylornet", "--epochs", "3", "--max-train-examples", "96",
         "--max-eval-examples", "60", "--seed", "0"]


def _env(tmp_path, point=None, skip=0):
    tmpdir = tmp_path / "tmpdir"
    tmpdir.mkdir(exist_ok=True)
    env = {**os.environ, "TMPDIR": str(tmpdir), "TN_KERAS_HOME": str(tmp_path / "home"),
           "TN_KERAS_OFFLINE": "1"}
    if point is not None:
        env.update(TN_KERAS_FAULT_POINT=point, TN_KERAS_FAULT_SKIP=str(skip),
                   TN_KERAS_FAULT_SIGNAL=str(tmp_path / f"reached-{point}"))
    return env


def run(argv, tmp_path):
    return subprocess.run([sys.executable, "-c", LAUNCHER, *map(str, argv)],
                          capture_output=True, text=True, timeout=500, env=_env(tmp_path))


def start_and_kill(argv, tmp_path, point, skip=0):
    """Run until the kill point is reached, then SIGKILL; returns the dead process."""
    signal_file = tmp_path / f"reached-{point}"
    if signal_file.exists():
        signal_file.unlink()
    process = subprocess.Popen([sys.executable, "-c", LAUNCHER, *map(str, argv)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               env=_env(tmp_path, point, skip))
    deadline = time.monotonic() + 400
    while not signal_file.exists():
        if process.poll() is not None:
            raise AssertionError(f"ended before {point}: {process.stderr.read().decode()}")
        assert time.monotonic() < deadline, f"{point} not reached"
        time.sleep(0.2)
    process.send_signal(signal.SIGKILL)
    process.wait()
    return process


def taken_over(result, target):
    """The killed run's lock did not block: the next run took it over, saying so in one line
    (and released it at the end)."""
    from tn_keras.utils.locks import lock_path

    lines = [line for line in result.stderr.splitlines() if "took over the lock" in line]
    assert len(lines) == 1 and lock_path(target) in lines[0], result.stderr
    assert not os.path.exists(lock_path(target))


def litter(out, tmp_path):
    """Temporaries a killed run may leave: .tmp-* files, staging folders, $TMPDIR entries."""
    parent = os.path.dirname(os.path.abspath(out))
    found = glob.glob(os.path.join(out, "**", ".tmp-*"), recursive=True)
    found += glob.glob(os.path.join(parent, ".tmp-*")) + glob.glob(os.path.join(parent, ".*.old-*"))
    return found + tmpdir_litter(tmp_path)


def tmpdir_litter(tmp_path):
    # TensorFlow's autograph writes the source of each converted function to $TMPDIR on every
    # run, killed or not, and never removes it: that is TensorFlow's, not a tn_keras temporary.
    return [name for name in os.listdir(tmp_path / "tmpdir")
            if not name.startswith("__autograph_generated_file")]


def keras_weights(path):
    import keras

    import tn_keras  # noqa: F401  (registers the layers)

    return keras.saving.load_model(path, compile=False).get_weights()


def log_epochs(out):
    with open(os.path.join(out, "training_log.csv")) as f:
        return [line.split(",")[0] for line in f.read().strip().splitlines()[1:]]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The uninterrupted run every resumed run is compared with."""
    tmp_path = tmp_path_factory.mktemp("reference")
    out = tmp_path / "out"
    result = run(TRAIN + ["--out", out], tmp_path)
    assert result.returncode == 0, result.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    return keras_weights(str(out / "digits_taylornet.keras")), manifest["metrics"]


def max_weight_difference(a, b):
    return max(float(np.max(np.abs(x - y))) for x, y in zip(a, b))


@pytest.mark.parametrize("point,skip", [
    ("backup-write", 0),   # inside the first backup write: no complete epoch yet
    ("backup-write", 1),   # inside the second: epoch 1's backup must survive
    ("fit-finished", 0),   # all epochs backed up, checkpoint not written yet
])
def test_training_killed_then_resumed(point, skip, tmp_path, reference):
    out = tmp_path / "out"
    start_and_kill(TRAIN + ["--out", out], tmp_path, point, skip)
    assert not (out / "manifest.json").exists()  # nothing incomplete looks finished
    state = out / "backup" / "state.json"
    if skip or point == "fit-finished":
        recorded = json.loads(state.read_text())
        weights = out / "backup" / recorded["weights"]
        assert hashlib.sha256(weights.read_bytes()).hexdigest() == recorded["sha256"]
        assert recorded["epoch"] == (3 if point == "fit-finished" else skip)

    resumed = run(TRAIN + ["--out", out, "--resume"], tmp_path)  # no manual step
    assert resumed.returncode == 0, resumed.stderr
    taken_over(resumed, out)
    # Only the lines naming the lock taken over, where the run resumes (when a backup was
    # complete) and the checkpoint written: no warning, log line or traceback.
    resuming = [line for line in resumed.stderr.splitlines()
                if line.startswith("tn_keras: resuming ")]
    expected = {("backup-write", 0): [], ("backup-write", 1): [
        "tn_keras: resuming at epoch 2 of 3 from the backup of epoch 1 "
        f"({out / 'backup' / 'epoch-00001.weights.h5'})"], ("fit-finished", 0): [
        "tn_keras: resuming from the backup of epoch 3 "
        f"({out / 'backup' / 'epoch-00003.weights.h5'}): all 3 epochs are done, nothing is "
        "left to train"]}
    assert resuming == expected[point, skip], resumed.stderr
    assert [line for line in resumed.stderr.splitlines()
            if not line.startswith("tn-keras train: wrote checkpoint ")
            and "took over the lock" not in line and line not in resuming] == []
    assert (out / "manifest.json").exists() and not (out / "backup").exists()
    assert litter(out, tmp_path) == []
    completed = 3 if point == "fit-finished" else skip
    assert log_epochs(out)[:completed] == [str(e) for e in range(completed)]
    # Exact resume: the batches of epoch e are a function of (seed, e), not of how often the
    # process iterated the dataset, so every resumed run ends with the uninterrupted weights.
    weights, metrics = reference
    assert max_weight_difference(
        keras_weights(str(out / "digits_taylornet.keras")), weights) == 0.0
    assert json.loads((out / "manifest.json").read_text())["metrics"] == metrics


def test_a_damaged_newest_backup_falls_back_to_the_one_before(tmp_path, reference):
    """Killed after the last epoch's backup, whose file is then truncated (as a full disk or a
    kill inside the file system can leave it): --resume falls back to epoch 2, with one line
    naming both, trains epoch 3 again and ends like the uninterrupted run."""
    out = tmp_path / "out"
    start_and_kill(TRAIN + ["--out", out], tmp_path, "fit-finished")
    state = json.loads((out / "backup" / "state.json").read_text())
    assert (state["epoch"], state["previous"]["epoch"]) == (3, 2)
    (out / "backup" / state["weights"]).write_bytes(b"")
    resumed = run(TRAIN + ["--out", out, "--resume"], tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    fallback = [line for line in resumed.stderr.splitlines() if "the one before" in line]
    assert len(fallback) == 1 and "epoch-00003" in fallback[0] and "epoch-00002" in fallback[0]
    assert log_epochs(out) == ["0", "1", "2"] and litter(out, tmp_path) == []
    weights, metrics = reference  # epoch 3 trained again on epoch 3's batches: identical
    assert max_weight_difference(
        keras_weights(str(out / "digits_taylornet.keras")), weights) == 0.0
    assert json.loads((out / "manifest.json").read_text())["metrics"] == metrics


def test_killed_before_the_backup_is_deleted_is_finished(tmp_path):
    out = tmp_path / "out"
    start_and_kill(TRAIN + ["--out", out], tmp_path, "before-backup-delete")
    assert (out / "manifest.json").exists() and (out / "backup").exists()
    again = run(TRAIN + ["--out", out, "--resume"], tmp_path)  # reads only: takes no lock
    assert again.returncode == 0 and "already finished" in again.stdout, again.stderr
    fresh = run(TRAIN + ["--out", out], tmp_path)
    assert fresh.returncode == 2 and "already exists" in fresh.stderr
    taken_over(fresh, out)


def test_a_second_run_on_a_locked_folder_fails_at_once(tmp_path):
    out = tmp_path / "out"
    first = subprocess.Popen([sys.executable, "-c", LAUNCHER, *map(str, TRAIN), "--out", str(out)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             env=_env(tmp_path, "backup-write", 1))
    try:
        while not (tmp_path / "reached-backup-write").exists():
            assert first.poll() is None, first.stderr.read().decode()
            time.sleep(0.2)
        before = {p: open(p, "rb").read() for p in glob.glob(str(out / "**"), recursive=True)
                  if os.path.isfile(p)}
        started = time.monotonic()
        second = run(TRAIN + ["--out", out, "--overwrite"], tmp_path)
        assert second.returncode == 5, second.stderr
        assert "being written by another run" in second.stderr
        assert time.monotonic() - started < 60
        after = {p: open(p, "rb").read() for p in glob.glob(str(out / "**"), recursive=True)
                 if os.path.isfile(p)}
        assert after == before
    finally:
        first.kill()
        first.wait()


EXPORT = ["export", "digits_taylornet", "--weights", "none", "--activation-quantile", "1"]


def _export_is_sound(target):
    manifest = json.loads(open(str(target) + ".json").read())
    assert hashlib.sha256(open(target, "rb").read()).hexdigest() == manifest["sha256"]
    return manifest


@pytest.mark.parametrize("point", ["export-before-commit", "export-commit",
                                   "export-half-placed"])
def test_export_killed_keeps_the_previous_export(point, tmp_path):
    target = tmp_path / "digits.tflite"
    first = run(EXPORT + ["--format", "tflite", "--out", target], tmp_path)
    assert first.returncode == 0, first.stderr
    previous = _export_is_sound(target)
    start_and_kill(EXPORT + ["--format", "tflite_int8", "--out", target, "--overwrite"],
                   tmp_path, point)
    assert tmpdir_litter(tmp_path) == []  # temporaries live beside the target
    if point == "export-before-commit":
        assert _export_is_sound(target) == previous
    # The next export of the target takes the lock over, first restores the previous export
    # (so it is refused without --overwrite), then replaces it when asked.
    refused = run(EXPORT + ["--format", "tflite_int8", "--out", target], tmp_path)
    assert refused.returncode == 2 and "already exists" in refused.stderr, refused.stderr
    taken_over(refused, target)
    assert _export_is_sound(target) == previous
    assert litter(target, tmp_path) == []
    done = run(EXPORT + ["--format", "tflite_int8", "--out", target, "--overwrite"], tmp_path)
    assert done.returncode == 0, done.stderr
    assert _export_is_sound(target)["format"] == "tflite_int8"
    assert litter(target, tmp_path) == []


def test_export_killed_with_no_previous_export_leaves_nothing(tmp_path):
    target = tmp_path / "digits.tflite"
    start_and_kill(EXPORT + ["--format", "tflite_int8", "--out", target], tmp_path,
                   "export-half-placed")
    assert target.exists() and not os.path.exists(str(target) + ".json")  # half placed
    done = run(EXPORT + ["--format", "tflite_int8", "--out", target], tmp_path)
    assert done.returncode == 0, done.stderr  # the half-placed export was removed first
    taken_over(done, target)
    assert _export_is_sound(target)["format"] == "tflite_int8"
    assert litter(target, tmp_path) == []


DISTILL = ["distill", "digits_taylornet", "--levels", "3", "--per-class", "16", "--seed", "0"]


def test_distillation_killed_inside_a_level_write_then_resumed(tmp_path):
    """Level 1 complete in its temporary folder, not renamed: resume keeps level 0, removes the
    temporary, and ends with the levels of an uninterrupted run."""
    from tn_keras import distill

    out = tmp_path / "levels"
    start_and_kill(DISTILL + ["--out", out], tmp_path, "level-write", skip=1)
    left = sorted(os.listdir(out))
    assert left[-1] == "level_0" and len(left) == 2 and left[0].startswith(".tmp-level_1-")
    resumed = run(DISTILL + ["--out", out, "--resume"], tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    taken_over(resumed, out)
    assert litter(out, tmp_path) == []
    reference = tmp_path / "reference"
    assert run(DISTILL + ["--out", reference], tmp_path).returncode == 0
    for level in range(4):
        np.testing.assert_array_equal(distill.load_level(str(out), level)[0],
                                      distill.load_level(str(reference), level)[0])

