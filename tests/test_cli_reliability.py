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


def _dead_pid():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def _write_owner(target, **owner):
    with open(locks.lock_path(target), "w") as f:
        json.dump(owner, f)


def test_lock_of_a_dead_owner_is_taken_over_with_one_line(tmp_path, capsys):
    target = tmp_path / "out"
    _write_owner(target, pid=_dead_pid(), host=socket.gethostname(), command="killed run")
    path = locks.acquire(target)
    try:
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 1 and "took over the lock" in lines[0], lines
        assert path in lines[0] and "killed run" in lines[0]
        assert locks.read_lock(path)["pid"] == os.getpid()
    finally:
        locks.release(path)
    assert not os.path.exists(path)


def test_lock_of_a_live_pid_or_another_host_is_refused(tmp_path):
    target = tmp_path / "out"
    # A live pid that holds no OS lock: a run of an older tn_keras (or a reused pid).
    _write_owner(target, pid=os.getpid(), host=socket.gethostname())
    with pytest.raises(locks.OutputLockedError, match="being written by another run"):
        locks.acquire(target)
    # Another host's pids cannot be checked from here: reported, never broken.
    _write_owner(target, pid=_dead_pid(), host="elsewhere")
    with pytest.raises(locks.OutputLockedError, match="another host.*elsewhere"):
        locks.acquire(target)
    assert locks.read_lock(locks.lock_path(target))["host"] == "elsewhere"  # left as it was


def test_lock_key_is_the_resolved_path(tmp_path):
    (tmp_path / "o").mkdir()
    os.symlink("o", tmp_path / "L")
    assert locks.lock_path(tmp_path / "L") == locks.lock_path(tmp_path / "o")
    assert locks.lock_path(tmp_path / "x" / ".." / "o") == locks.lock_path(tmp_path / "o")
    with locks.locked(tmp_path / "o"):
        with pytest.raises(locks.OutputLockedError):
            locks.acquire(tmp_path / "L")


# Loads locks.py alone (no TensorFlow start-up) in a child that holds the lock until killed.
_HOLDER = """
import importlib.util, sys, time
spec = importlib.util.spec_from_file_location("locks", sys.argv[1])
locks = importlib.util.module_from_spec(spec)
spec.loader.exec_module(locks)
locks.acquire(sys.argv[2], "holder")
print("held", flush=True)
time.sleep(120)
"""


def test_a_killed_owner_never_leaves_a_lock_that_blocks(tmp_path, capsys):
    target = tmp_path / "out"
    holder = subprocess.Popen([sys.executable, "-c", _HOLDER, locks.__file__, str(target)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(locks.OutputLockedError, match="holder"):
            locks.acquire(target)  # a live owner: refused
    finally:
        holder.kill()  # SIGKILL: no release ran; the kernel dropped the OS lock
        holder.wait()
    assert os.path.exists(locks.lock_path(target))
    with locks.locked(target):
        assert "took over the lock" in capsys.readouterr().err


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


def test_importing_the_library_prints_no_tensorflow_start_up_line():
    """``import tn_keras`` (which loads Keras, and TensorFlow under its backend) leaves stderr
    without TensorFlow's start-up lines (oneDNN's notice, cpu_feature_guard), as the CLI
    does, unless the user chooses a level: TF_CPP_MIN_LOG_LEVEL=0 shows them (issue 28)."""
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    script = "import tn_keras, keras; keras.ops.add(1.0, 2.0)"
    quiet = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                           timeout=300, env={**env, "KERAS_BACKEND": "tensorflow"})
    assert quiet.returncode == 0, quiet.stderr
    assert quiet.stderr == "", quiet.stderr
    asked = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                           timeout=300, env={**env, "KERAS_BACKEND": "tensorflow",
                                             "TF_CPP_MIN_LOG_LEVEL": "0"})
    assert asked.returncode == 0, asked.stderr
    assert "cpu_feature_guard" in asked.stderr and "oneDNN" in asked.stderr
