"""The CLI's error contract, output locks, and the training folder's rules (fast unit tests),
plus the quiet start of ``tn-keras quickstart`` (slow: a real subprocess)."""
import json
import os
import socket
import subprocess
import sys

import pytest

from tn_keras.cli import EXIT_CODES
from tn_keras.cli import error_line
from tn_keras.cli import exit_code
from tn_keras.utils import locks


class _FakeH5pyError(OSError):
    pass


_FakeH5pyError.__module__ = "h5py._hl.files"


@pytest.mark.parametrize("error,code", [
    (ValueError("x"), "input"), (FileNotFoundError(2, "No such file", "a"), "input"),
    (IsADirectoryError(21, "Is a directory", "a"), "input"),
    (PermissionError(13, "Permission denied", "a"), "filesystem"),
    (OSError(28, "No space left on device", "a"), "filesystem"),
    (MemoryError(), "memory"), (locks.OutputLockedError("busy"), "locked"),
    (KeyboardInterrupt(), "interrupted"), (RuntimeError("bug"), "internal"),
    (_FakeH5pyError("unable to lock file"), "internal"),
])
def test_exit_codes(error, code):
    assert exit_code(error) == EXIT_CODES[code]


def test_error_line_is_one_line_and_names_the_file():
    line = error_line("train", ValueError("first\n  - second\n  - third"))
    assert line == "tn-keras train: error: first - second - third"
    line = error_line("export", PermissionError(13, "Permission denied", "/x/model.tflite"))
    assert line == "tn-keras export: error: /x/model.tflite: Permission denied"
    assert "--debug" in error_line("train", RuntimeError("bug"))
    assert "KeyError: 'loss'" in error_line("train", KeyError("loss"))


def test_lock_is_exclusive_and_released(tmp_path):
    target = tmp_path / "out"
    with locks.locked(target) as path:
        owner = locks.read_lock(path)
        assert owner["pid"] == os.getpid() and owner["host"] == socket.gethostname()
        with pytest.raises(locks.OutputLockedError, match="being written by another run"):
            locks.acquire(target)
    assert not os.path.exists(path)
    locks.acquire(target)  # free again
    locks.release(locks.lock_path(target))


def test_stale_lock_is_reported_with_how_to_clear_it(tmp_path):
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    target = tmp_path / "out"
    with open(locks.lock_path(target), "w") as f:
        json.dump({"pid": child.pid, "host": socket.gethostname()}, f)
    with pytest.raises(locks.StaleLockError, match="delete .*\\.out\\.lock"):
        locks.acquire(target)
    # A lock of another host is never judged stale: its pids cannot be checked from here.
    with open(locks.lock_path(target), "w") as f:
        json.dump({"pid": child.pid, "host": "elsewhere"}, f)
    with pytest.raises(locks.OutputLockedError) as error:
        locks.acquire(target)
    assert not isinstance(error.value, locks.StaleLockError)


def test_release_leaves_another_process_lock_alone(tmp_path):
    path = locks.lock_path(tmp_path / "out")
    with open(path, "w") as f:
        json.dump({"pid": os.getpid() + 1, "host": socket.gethostname()}, f)
    locks.release(path)
    assert os.path.exists(path)


def test_resume_on_a_finished_run_says_so_and_exits_0(tmp_path, capsys):
    from tn_keras.cli import main

    out = tmp_path / "run"
    argv = ["train", "digits_taylornet", "--epochs", "1", "--max-train-examples", "32",
            "--max-eval-examples", "20", "--out", str(out)]
    assert main(argv) == 0
    manifest = (out / "manifest.json").read_bytes()
    assert not (out / "backup").exists()  # deleted once the checkpoint was written
    capsys.readouterr()
    assert main(argv + ["--resume"]) == 0
    assert "already finished" in capsys.readouterr().out
    assert (out / "manifest.json").read_bytes() == manifest
    # The library returns the finished checkpoint instead of training again.
    from tn_keras.training import train

    model, again = train("digits_taylornet", epochs=1, max_train_examples=32, out=str(out),
                         resume=True)
    assert again["sha256"] == json.loads(manifest)["sha256"] and model is not None


def test_overwrite_replaces_the_previous_run_as_a_whole(tmp_path, capsys):
    from tn_keras.cli import main

    out = tmp_path / "run"
    argv = ["train", "digits_taylornet", "--epochs", "1", "--max-train-examples", "32",
            "--max-eval-examples", "20", "--out", str(out)]
    assert main(argv) == 0
    (out / "backup").mkdir()
    (out / "backup" / "epoch-00009.weights.h5").write_bytes(b"an older run's")
    assert main(argv + ["--overwrite"]) == 0
    assert sorted(os.listdir(out)) == ["README.md", "digits_taylornet.keras", "manifest.json",
                                       "training_log.csv"]  # README.md: the model card
    assert [p for p in os.listdir(tmp_path) if p.startswith(".")] == []  # no lock, no trash


@pytest.mark.slow
def test_quickstart_prints_only_its_own_lines(tmp_path):
    """No TensorFlow, absl or Python-warning line: stderr is empty (issue 16)."""
    script = "import sys, tn_keras_cli; sys.exit(tn_keras_cli.main())"
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    result = subprocess.run([sys.executable, "-c", script, "quickstart", "--epochs", "1"],
                            capture_output=True, text=True, timeout=600,
                            env={**env, "TN_KERAS_HOME": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 4 and lines[0].startswith("digits_taylornet:")
    assert not any(word in result.stdout for word in ("WARNING", "I0000", "Warning", "absl"))
