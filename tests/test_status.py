"""``tn-keras status PATH``: what an output holds, found read-only (issue 27).

The folders are built by hand (a backup's files are bytes with their sha256, levels and exports
are manifests over small files), so every case runs in milliseconds; the shipped digits
checkpoint is the finished run. Each case also checks that status wrote nothing: the tree
beside and under the folder is byte-identical afterwards and no lock file appeared.
"""
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

from tn_keras import artifacts
from tn_keras import zoo
from tn_keras.cli import EXIT_CODES
from tn_keras.utils import locks


def _snapshot(folder):
    """Every path under ``folder`` (hidden ones too) with its bytes, None for a folder: what
    status must leave as it was."""
    found = {}
    for root, dirs, files in os.walk(str(folder)):
        found.update({os.path.join(root, d): None for d in dirs})
        for name in files:
            with open(os.path.join(root, name), "rb") as f:
                found[os.path.join(root, name)] = f.read()
    return found


def _status(path, capsys, *extra):
    """Run ``tn-keras status`` in process; ``(exit code, stdout lines, stderr)``, after
    checking that it changed nothing under ``path``'s parent folder."""
    from tn_keras.cli import main

    parent = os.path.dirname(os.path.abspath(str(path)))
    before = _snapshot(parent)
    code = main(["status", str(path), *extra])
    out, err = capsys.readouterr()
    assert _snapshot(parent) == before
    return code, out.splitlines(), err


def _write(path, data):
    os.makedirs(os.path.dirname(str(path)), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
    return hashlib.sha256(data).hexdigest()


def _run_folder(out, done=(1, 2), damaged=(), epochs=3):
    """A training folder as a run killed after epoch ``done[-1]`` leaves it: run.json, the
    backups of ``done`` (the last two recorded in state.json), ``damaged`` ones truncated."""
    backup = out / "backup"
    _write(backup / "run.json", json.dumps({"name": "digits_taylornet", "epochs": epochs,
                                            "seed": 0}).encode())
    entries = []
    for epoch in done:
        name = f"epoch-{epoch:05d}.weights.h5"
        sha = _write(backup / name, f"weights of epoch {epoch}".encode())
        if epoch in damaged:
            _write(backup / name, b"")
        entries.append({"epoch": epoch, "weights": name, "sha256": sha})
    if entries:
        state = dict(entries[-1], logs={})
        if len(entries) > 1:
            state["previous"] = dict(entries[-2], logs={})
        _write(backup / "state.json", json.dumps(state).encode())
    return out


def test_an_interrupted_run_is_resumable_from_its_newest_verified_backup(tmp_path, capsys):
    out = _run_folder(tmp_path / "run")
    code, lines, err = _status(out, capsys)
    assert code == 0 and err == "" and len(lines) == 1, (lines, err)
    assert lines[0] == (
        f"{out}: training run: resumable: digits_taylornet, resumes at epoch 3 of 3 from the "
        f"backup of epoch 2 ({out / 'backup' / 'epoch-00002.weights.h5'}, sha256 verified); "
        "--resume with the run's other arguments continues it")
    assert not os.path.exists(locks.lock_path(out))


def test_a_damaged_newest_backup_resumes_from_the_one_before(tmp_path, capsys):
    out = _run_folder(tmp_path / "run", damaged=(2,))
    _, (line,), _ = _status(out, capsys)
    assert ("resumable: digits_taylornet, resumes at epoch 2 of 3 from the backup of epoch 1"
            in line)
    assert "(the newest, epoch 2, is missing or damaged)" in line


def test_no_intact_backup_is_damaged_in_one_line(tmp_path, capsys):
    out = _run_folder(tmp_path / "run", damaged=(1, 2))
    code, (line,), _ = _status(out, capsys)
    assert code == 0 and line.startswith(f"{out}: training run: damaged: ")
    assert "state.json names" in line and "none is complete" in line


def test_a_run_before_its_first_epoch_and_one_with_every_epoch_backed_up(tmp_path, capsys):
    fresh = _run_folder(tmp_path / "fresh", done=())
    _, (line,), _ = _status(fresh, capsys)
    assert "not started: digits_taylornet, no epoch finished yet; --resume starts at epoch 1 " \
           "of 3" in line
    done = _run_folder(tmp_path / "done", done=(2, 3))
    _, (line,), _ = _status(done, capsys)
    assert "resumable: digits_taylornet, all 3 epochs backed up" in line
    assert "--resume writes the checkpoint without training" in line


def test_a_finished_run_verifies_and_a_changed_checkpoint_is_damaged(tmp_path, capsys):
    out = tmp_path / "run"
    shutil.copytree(zoo.find("digits_taylornet").folder, out)
    _, (line,), _ = _status(out, capsys)
    assert line.startswith(f"{out}: training run: finished: digits_taylornet.e60, 60 epochs, "
                           "test accuracy 0.98")
    assert "digits_taylornet.keras, training_log.csv and manifest.json verify" in line
    with open(out / "digits_taylornet.keras", "ab") as f:
        f.write(b"x")
    code, (line,), _ = _status(out, capsys)
    assert code == 0 and "training run: damaged: " in line
    assert f"{out / 'digits_taylornet.keras'} is corrupt or was replaced" in line


_HOLD_LOCK = """
import fcntl, json, os, socket, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)
fcntl.flock(fd, fcntl.LOCK_EX)
os.write(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                         "started": "2026-01-01T00:00:00+00:00",
                         "command": "tn-keras train digits_taylornet"}).encode())
open(sys.argv[2], "w").close()
time.sleep(600)
"""


def test_a_live_lock_holder_is_running_and_a_dead_ones_lock_is_a_note(tmp_path, capsys):
    """The holder is seen in /proc/locks (a plain flock, as `tn_keras.utils.locks` takes it):
    status takes no lock itself. Once the holder is killed, the lock file is only a note."""
    out = _run_folder(tmp_path / "run", done=(1,))
    ready = tmp_path / "ready"
    holder = subprocess.Popen([sys.executable, "-c", _HOLD_LOCK, locks.lock_path(out),
                               str(ready)])
    try:
        deadline = time.monotonic() + 60
        while not ready.exists():
            assert holder.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        _, (line,), _ = _status(out, capsys)
        assert line == (f"{out}: training run: running: pid {holder.pid} on host "
                        f"{socket.gethostname()}, started 2026-01-01T00:00:00+00:00: tn-keras "
                        "train digits_taylornet; digits_taylornet, 1 of 3 epochs backed up so "
                        "far")
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    _, lines, _ = _status(out, capsys)
    assert "resumable: digits_taylornet, resumes at epoch 2 of 3" in lines[0]
    assert lines[1] == (f"  {locks.lock_path(out)}: a lock left by a run that is no longer "
                        f"running (pid {holder.pid} on host {socket.gethostname()}, started "
                        "2026-01-01T00:00:00+00:00: tn-keras train digits_taylornet); the next "
                        "run takes it over")


def test_a_lock_recorded_by_another_host_is_reported(tmp_path, capsys):
    out = _run_folder(tmp_path / "run")
    with open(locks.lock_path(out), "w") as f:
        json.dump({"pid": 1, "host": "elsewhere", "started": "t", "command": "c"}, f)
    _, (line,), _ = _status(out, capsys)
    assert line == (f"{out}: training run: locked elsewhere: by a run on another host (pid 1 "
                    "on host elsewhere, started t: c); its pid cannot be checked from here")


def _level(folder, level, images=4):
    """A level folder with its manifest, as `tn_keras.distill.level_files.write_level` leaves it."""
    from tn_keras.distill.level_files import write_manifest

    os.makedirs(folder)
    np.savez(os.path.join(folder, "images.npz"), x=np.zeros((images, 8, 8, 1), np.uint8),
             y=np.arange(images))
    write_manifest(str(folder), {"level": level, "num_images": images, "model": {},
                                 "source": {}}, seed=0)


def test_a_distillation_lists_its_levels_and_what_resume_reuses(tmp_path, capsys):
    out = tmp_path / "levels"
    for level in range(3):
        _level(out / f"level_{level}", level, images=8 >> level)
    (out / "summary.json").write_text(json.dumps({"levels": [0, 1, 2]}))
    _, lines, _ = _status(out, capsys)
    assert lines == [f"{out}: distillation: finished: levels 0-2 complete and verified",
                     "  level_0: 8 images, verified", "  level_1: 4 images, verified",
                     "  level_2: 2 images, verified"]
    # A run killed while writing level 2: no summary yet, a temporary level folder.
    (out / "summary.json").unlink()
    shutil.rmtree(out / "level_2")
    os.makedirs(out / ".tmp-level_2-abcd")
    _, lines, _ = _status(out, capsys)
    assert lines[0] == (f"{out}: distillation: unfinished: levels 0-1 complete and verified; "
                        "no summary.json yet; --resume reuses levels 0-1 (if made with the "
                        "same settings) and makes the rest")
    assert lines[-1] == (f"  {out / '.tmp-level_2-abcd'}: left by a killed run; the next run "
                         "removes it")
    with open(out / "level_1" / "images.npz", "ab") as f:
        f.write(b"x")
    _, lines, _ = _status(out, capsys)
    assert lines[0].startswith(f"{out}: distillation: damaged: level 0 complete and verified; "
                               "level 1 damaged; ")
    assert lines[2].startswith(f"  level_1: damaged: {out / 'level_1' / 'images.npz'} is "
                               "corrupt")


def test_an_export_file_verifies_or_is_damaged(tmp_path, capsys):
    target = tmp_path / "m.tflite"
    sha = _write(target, b"flatbuffer")
    artifacts.write(str(target) + ".json", artifacts.Manifest(
        kind="export", name="digits", file="m.tflite", sha256=sha, size_bytes=10,
        provenance=artifacts.Provenance(model="digits_taylornet.e60"),
        record={"format": "tflite"}))
    _, (line,), _ = _status(target, capsys)
    assert line == (f"{target}: export: complete: tflite of digits_taylornet.e60, 10 bytes; "
                    f"its files and manifest verify (sha256 {sha[:12]})")
    _write(target, b"half a flatbuffer")
    _, (line,), _ = _status(target, capsys)
    assert line.startswith(f"{target}: export: damaged: {target} is corrupt or was replaced")


def test_json_output(tmp_path, capsys):
    out = _run_folder(tmp_path / "run")
    code, lines, _ = _status(out, capsys, "--json")
    record = json.loads("\n".join(lines))
    assert code == 0 and record["state"] == "resumable" and record["kind"] == "training run"
    assert record["lock"] == {"state": "free", "file": locks.lock_path(out), "owner": {}}


@pytest.mark.parametrize("make,culprit", [
    (lambda d: d / "missing", "missing: no such file or folder"),
    (lambda d: (d / "mine").mkdir() or (d / "mine" / "notes.txt").write_text("x") and d / "mine",
     "is not a training, distillation or export output of tn-keras (it holds notes.txt)"),
    (lambda d: (d / "f.txt").write_text("x") and d / "f.txt", "without an export manifest"),
], ids=["missing", "user-folder", "plain-file"])
def test_what_is_no_output_is_one_line_exit_2(make, culprit, tmp_path, capsys):
    path = make(tmp_path)
    code, lines, err = _status(path, capsys)
    assert code == EXIT_CODES["input"] and lines == []
    assert len(err.splitlines()) == 1 and err.startswith(f"tn-keras status: error: {path}")
    assert culprit in err
