"""A full disk (or a refused permission) while writing: exit 3, one line, nothing lost (issue 27).

A write the file system refuses (ENOSPC, EDQUOT, EACCES, EROFS) must leave the previous
checkpoint, backup or export byte-identical, remove its partial file, and end the command with
exit code 3 and one line naming the file, the cause and what is intact. The refusal is injected
with ``$TN_KERAS_FAULT_ERRNO`` at the writers' named points (`tn_keras.utils.faults`), in
process; the last two tests fill a real 300 KiB tmpfs (root only: skipped elsewhere), where
HDF5 used to print 80-odd lines of tracebacks and end in a segmentation fault.
"""
import errno
import glob
import hashlib
import json
import os
import shutil
import subprocess
import sys

import keras
import numpy as np
import pytest

from tn_keras.cli import EXIT_CODES
from tn_keras.cli import error_line
from tn_keras.cli import exit_code
from tn_keras.utils import faults
from tn_keras.utils import memory_saves
from tn_keras.utils.files import atomic_write_json
from tn_keras.utils.write_errors import WriteRefusedError
from tn_keras.utils.write_errors import refused_writes

TRAIN = ["train", "digits_taylornet", "--max-train-examples", "96", "--max-eval-examples",
         "60", "--seed", "0"]
EXPORT = ["export", "digits_taylornet", "--weights", "none", "--format", "tflite"]


class _FakeResourceExhaustedError(Exception):
    """What TensorFlow's SavedModel writer raises on a full disk (recognised by module)."""


_FakeResourceExhaustedError.__module__ = "tensorflow.python.framework.errors_impl"


def _tree(folder):
    """``{relative path: bytes}`` of every file under ``folder``."""
    files = {}
    for path in glob.glob(os.path.join(str(folder), "**"), recursive=True):
        if os.path.isfile(path):
            with open(path, "rb") as f:
                files[os.path.relpath(path, str(folder))] = f.read()
    return files


def _inject(monkeypatch, point, skip=0, code="ENOSPC"):
    """Make ``fault_point(point)`` raise ``OSError(code)`` after ``skip`` passes."""
    monkeypatch.setattr(faults, "_passes", {})
    monkeypatch.setenv(faults.POINT_ENV, point)
    monkeypatch.setenv(faults.SKIP_ENV, str(skip))
    monkeypatch.setenv(faults.ERRNO_ENV, code)


def _cli(argv, capsys):
    from tn_keras.cli import main

    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


# Lines that are no error: a resumed run says where it starts; TFLite's C++ runtime announces
# its delegate on file descriptor 2 (a subprocess sees it).
_INFORMATION = ("tn_keras: resuming", "INFO: Created TensorFlow Lite XNNPACK delegate")


def _one_error_line(code, err, *culprits):
    """Exit 3 and one error line naming every culprit; returns the line."""
    lines = [line for line in err.splitlines()
             if line.strip() and not line.startswith(_INFORMATION)]
    assert code == EXIT_CODES["filesystem"], err
    assert "Traceback" not in err and len(lines) == 1, err
    for culprit in culprits:
        assert str(culprit) in lines[0], lines[0]
    return lines[0]


# ------------------------------------------------------------------- the error and its line
def test_a_refused_write_is_one_line_naming_the_file_and_what_is_intact():
    with pytest.raises(WriteRefusedError) as caught:
        with refused_writes("/x/m.keras", intact="the previous checkpoint is intact"):
            raise OSError(errno.ENOSPC, "No space left on device")  # a plain write: no name
    error = caught.value
    assert str(error) == ("no space left on device writing /x/m.keras (the previous "
                          "checkpoint is intact)")
    assert exit_code(error) == EXIT_CODES["filesystem"]
    assert error_line("train", error) == f"tn-keras train: error: {error}"


@pytest.mark.parametrize("code,cause", [(errno.EDQUOT, "disk quota exceeded"),
                                        (errno.EACCES, "permission denied"),
                                        (errno.EROFS, "read-only file system")])
def test_quota_permission_and_read_only_are_refused_writes(code, cause):
    with pytest.raises(WriteRefusedError, match=f"^{cause} writing /x/out/m.tflite$"):
        with refused_writes("/x/out/m.tflite", paths=("/x/out",)):
            raise OSError(code, os.strerror(code), "/x/out/.tmp-abc.tflite")


def test_a_read_that_is_refused_is_not_called_a_write():
    """A dataset that cannot be read is its own error ("x.npz: Permission denied"), not the
    output's; a full disk is always the write's."""
    with pytest.raises(PermissionError):
        with refused_writes("/x/out/m.keras", paths=("/x/out",)):
            raise PermissionError(errno.EACCES, "Permission denied", "/data/mnist.npz")


def test_tensorflows_full_disk_error_is_a_refused_write():
    message = "/x/.tmp-export-sm-1234abcd/result/saved_model.pb.tmp9; No space left on device"
    with pytest.raises(WriteRefusedError, match="^no space left on device writing /x/sm "):
        with refused_writes("/x/sm", intact="nothing was left behind"):
            raise _FakeResourceExhaustedError(message)
    with pytest.raises(_FakeResourceExhaustedError):  # an out-of-memory error stays one
        with refused_writes("/x/sm"):
            raise _FakeResourceExhaustedError("OOM when allocating tensor with shape[1024]")


def test_an_atomic_write_that_fails_leaves_the_previous_file_and_no_temporary(tmp_path,
                                                                              monkeypatch):
    path = tmp_path / "state.json"
    atomic_write_json(path, {"epoch": 1})
    before = path.read_bytes()

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(WriteRefusedError, match=f"writing {path}$"):
        atomic_write_json(path, {"epoch": 2})
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["state.json"]


def test_weights_saved_through_memory_load_back_identical(tmp_path):
    """HDF5 writes into memory, one plain write puts the file on disk: what Keras reads back
    is the model and optimizer state as saved."""
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    model.compile(optimizer="adam", loss="mse")
    model.fit(np.ones((8, 4)), np.zeros((8, 3)), verbose=0)
    path = str(tmp_path / "w.weights.h5")
    memory_saves.save_weights(model, path)
    other = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    other.compile(optimizer="adam", loss="mse")
    other.optimizer.build(other.trainable_variables)
    other.load_weights(path)
    for got, want in zip(other.get_weights() + [v.numpy() for v in other.optimizer.variables],
                         model.get_weights() + [v.numpy() for v in model.optimizer.variables]):
        np.testing.assert_array_equal(got, want)
    assert os.listdir(tmp_path) == ["w.weights.h5"]


# ------------------------------------------------------------------------- tn-keras train
@pytest.mark.slow
def test_training_backup_on_a_full_disk_keeps_the_previous_backup(tmp_path, capsys,
                                                                  monkeypatch):
    """Epoch 2's backup is refused: exit 3, one line naming it and the intact epoch 1; the
    same refusal on --resume leaves the folder byte-identical; then the run completes."""
    out = tmp_path / "out"
    _inject(monkeypatch, "backup-write", skip=1)
    code, _, err = _cli(TRAIN + ["--epochs", "3", "--out", out], capsys)
    line = _one_error_line(code, err, out / "backup" / "epoch-00002.weights.h5",
                           "no space left on device", "the backup of epoch 1 is intact")
    state = json.loads((out / "backup" / "state.json").read_text())
    weights = (out / "backup" / state["weights"]).read_bytes()
    assert state["epoch"] == 1 and hashlib.sha256(weights).hexdigest() == state["sha256"]
    assert not glob.glob(str(out / "**" / ".tmp-*"), recursive=True)
    before = _tree(out)

    _inject(monkeypatch, "backup-write")
    code, _, err = _cli(TRAIN + ["--epochs", "3", "--out", out, "--resume"], capsys)
    assert _one_error_line(code, err) == line
    assert _tree(out) == before

    monkeypatch.delenv(faults.ERRNO_ENV)
    monkeypatch.delenv(faults.POINT_ENV)
    code, _, err = _cli(TRAIN + ["--epochs", "3", "--out", out, "--resume"], capsys)
    assert code == 0, err
    assert "tn_keras: resuming at epoch 2 of 3 from the backup of epoch 1 (" in err
    assert (out / "manifest.json").exists() and not (out / "backup").exists()


@pytest.mark.slow
def test_checkpoint_on_a_full_disk_keeps_the_backup_to_resume_from(tmp_path, capsys,
                                                                   monkeypatch):
    out = tmp_path / "out"
    _inject(monkeypatch, "checkpoint-write")
    code, _, err = _cli(TRAIN + ["--epochs", "1", "--out", out], capsys)
    _one_error_line(code, err, out / "digits_taylornet.keras",
                    "the backup of epoch 1 is intact; --resume continues from it")
    assert sorted(os.listdir(out)) == ["backup", "training_log.csv"]  # no partial checkpoint
    before = _tree(out)
    _inject(monkeypatch, "checkpoint-write")
    code, _, err = _cli(TRAIN + ["--epochs", "1", "--out", out, "--resume"], capsys)
    _one_error_line(code, err, out / "digits_taylornet.keras")
    assert _tree(out) == before


# ------------------------------------------------------------------------ tn-keras export
@pytest.mark.slow
@pytest.mark.parametrize("point", ["export-before-commit", "export-commit"])
def test_export_on_a_full_disk_keeps_the_previous_export(point, tmp_path, capsys,
                                                         monkeypatch):
    """Refused in the staging folder, or after the previous export was moved aside for the
    commit: the previous export is back, byte-identical, and no staging folder is left."""
    target = tmp_path / "m.tflite"
    code, _, err = _cli(EXPORT + ["--out", target], capsys)
    assert code == 0, err
    before = _tree(tmp_path)
    _inject(monkeypatch, point)
    code, _, err = _cli(EXPORT + ["--out", target, "--overwrite", "--seed", "1"], capsys)
    _one_error_line(code, err, f"no space left on device writing {target} (the previous "
                               "export is intact)")
    assert _tree(tmp_path) == before and sorted(os.listdir(tmp_path)) == [
        "m.tflite", "m.tflite.json"]


# ------------------------------------------------------------- a real full disk (tmpfs)
_LAUNCHER = "import sys, tn_keras_cli; sys.exit(tn_keras_cli.main())"
# Run inside a private mount namespace (`unshare --mount`): the tmpfs exists for this script
# only and vanishes with it. It prints one JSON object: each command's code and stderr, and the
# sha256 of every file on the tmpfs after each.
_ON_A_SMALL_DISK = r"""
import hashlib, json, os, subprocess, sys
disk, size, commands = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", disk], check=True)
def files():
    found = {}
    for root, _, names in os.walk(disk):
        for name in names:
            with open(os.path.join(root, name), "rb") as f:
                found[os.path.relpath(os.path.join(root, name), disk)] = hashlib.sha256(
                    f.read()).hexdigest()
    return found
steps = []
for argv in commands:
    if argv[0] == "resize":
        subprocess.run(["mount", "-o", f"remount,size={argv[1]}", disk], check=True)
        continue
    done = subprocess.run([sys.executable, "-c", LAUNCHER, *argv], capture_output=True,
                          text=True)
    steps.append({"code": done.returncode, "stderr": done.stderr, "files": files()})
print(json.dumps(steps))
""".replace("LAUNCHER", repr(_LAUNCHER))


def _on_a_small_disk(tmp_path, size, commands):
    """Run ``commands`` (argv lists; ``["resize", SIZE]`` resizes) on a ``size`` tmpfs."""
    if shutil.which("unshare") is None or os.geteuid() != 0:
        pytest.skip("a real full disk needs a tmpfs: root and unshare(1)")
    disk = tmp_path / "disk"
    disk.mkdir()
    env = {**os.environ, "TN_KERAS_OFFLINE": "1", "TN_KERAS_HOME": str(tmp_path / "home")}
    done = subprocess.run(["unshare", "--mount", "--propagation", "private", sys.executable,
                           "-c", _ON_A_SMALL_DISK, str(disk), size, json.dumps(commands)],
                          capture_output=True, text=True, timeout=500, env=env,
                          cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    if done.returncode != 0 and "mount" in done.stderr:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip().splitlines()[-1]}")
    assert done.returncode == 0, done.stderr
    return disk, json.loads(done.stdout)


@pytest.mark.slow
def test_a_real_full_disk_during_training_is_one_line_and_no_crash(tmp_path):
    """700 KiB hold epoch 1's backup (434 KB) but not epoch 2's beside it. Before: 87 lines
    of h5py tracebacks, then a segmentation fault (exit 139)."""
    disk, (full,) = _on_a_small_disk(tmp_path, "700k", [
        TRAIN + ["--epochs", "3", "--out", str(tmp_path / "disk" / "run")]])
    _one_error_line(full["code"], full["stderr"], disk / "run" / "backup" /
                    "epoch-00002.weights.h5", "no space left on device",
                    "the backup of epoch 1 is intact")
    assert sorted(full["files"]) == ["run/backup/epoch-00001.weights.h5",
                                     "run/backup/run.json", "run/backup/state.json",
                                     "run/training_log.csv"]


@pytest.mark.slow
def test_a_real_full_disk_during_export_keeps_the_previous_export(tmp_path):
    target = str(tmp_path / "disk" / "m.tflite")
    disk, (first, refused) = _on_a_small_disk(tmp_path, "3m", [
        EXPORT + ["--out", target], ["resize", "250k"],
        EXPORT + ["--out", target, "--overwrite", "--seed", "1"]])
    assert first["code"] == 0, first["stderr"]
    _one_error_line(refused["code"], refused["stderr"], f"no space left on device writing "
                    f"{target} (the previous export is intact)")
    assert refused["files"] == first["files"]
