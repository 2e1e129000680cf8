"""Training, distribution strategies and the CLI, on the always-available 8x8 digits."""
import json
import os
import socket
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from tn_keras import zoo

ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", TN_KERAS_OFFLINE="1")


def _run(args, env=None, timeout=600):
    result = subprocess.run(args, capture_output=True, text=True, env=env or ENV,
                            timeout=timeout)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


@pytest.mark.backend_neutral
def test_train_writes_a_verified_checkpoint_and_is_deterministic(tmp_path):
    from tn_keras.training import train

    outs = [str(tmp_path / f"run{i}") for i in range(2)]
    manifests = [train("digits_taylornet", epochs=2, out=out, seed=3, max_train_examples=256,
                       verbose=0)[1] for out in outs]
    # Same seed, same machine: the same weights, bit for bit.
    weights = [zoo.load("digits_taylornet", weights=out).get_weights() for out in outs]
    for a, b in zip(*weights):
        np.testing.assert_array_equal(a, b)
    manifest = manifests[0]
    assert manifest["metrics"]["test_examples"] == 360
    assert 0.0 <= manifest["metrics"]["test_accuracy"] <= 1.0
    assert manifest["training"]["command"] == (
        f"tn-keras train digits_taylornet --epochs 2 --batch-size 32 --seed 3 "
        f"--max-train-examples 256 --out {outs[0]}")
    assert manifest["training"]["train_examples"] == 256
    assert set(manifest["versions"]) >= {"tn_keras", "keras", "tensorflow", "numpy"}
    with open(os.path.join(outs[0], "training_log.csv")) as f:
        assert len(f.read().strip().splitlines()) == 3  # header + 2 epochs
    # No leftovers: the backup is removed once training completes, no temporary files.
    assert sorted(os.listdir(outs[0])) == ["README.md", "digits_taylornet.keras",
                                          "manifest.json", "training_log.csv"]
    # Same weights, same bytes: the save date is pinned, so identical runs give identical files.
    assert manifests[0]["sha256"] == manifests[1]["sha256"]


def test_train_with_model_kwargs_records_and_reloads_them(tmp_path):
    from tn_keras.training import train

    out = str(tmp_path / "wide")
    model, manifest = train("digits_taylornet", epochs=1, out=out, max_train_examples=64,
                            verbose=0, model_kwargs={"width": 1.5})
    wide = zoo.build("digits_taylornet", width=1.5).count_params()
    assert wide != zoo.build("digits_taylornet").count_params()
    assert manifest["parameters"] == model.count_params() == wide
    assert manifest["training"]["model_kwargs"] == {"width": 1.5}
    assert manifest["training"]["command"] == (
        f"tn-keras train digits_taylornet --epochs 1 --batch-size 32 --seed 0 "
        f"--model-kwargs width=1.5 --max-train-examples 64 --out {out}")
    # The checkpoint holds the wide architecture itself.
    assert zoo.load("digits_taylornet", weights=out).count_params() == wide


@pytest.mark.backend_neutral
def test_epoch_time_goes_to_the_csv_log_not_the_progress_line(tmp_path, capsys):
    import csv

    from tn_keras.training import train

    out = str(tmp_path / "timed")
    train("digits_taylornet", epochs=2, out=out, max_train_examples=64, verbose=2)
    printed = capsys.readouterr().out
    assert "loss" in printed and "epoch_seconds" not in printed
    with open(os.path.join(out, "training_log.csv"), newline="") as f:
        rows = list(csv.DictReader(f))
    assert [row["epoch"] for row in rows] == ["0", "1"]
    assert all(float(row["epoch_seconds"]) > 0 for row in rows)
    # Only what was logged: no validation columns of NA (the run has no validation data).
    assert not [key for key in rows[0] if key.startswith("val_")], list(rows[0])
    assert all(value != "NA" for row in rows for value in row.values())


@pytest.mark.backend_neutral
def test_train_names_an_unknown_model_kwarg():
    from tn_keras.training import train

    with pytest.raises(ValueError, match=r"\['depth'\].*takes: input_shape, num_classes, width"):
        train("digits_taylornet", epochs=1, max_train_examples=64, model_kwargs={"depth": 3})


@pytest.mark.backend_neutral
def test_cli_parses_model_kwargs():
    from tn_keras.cli.train_command import parse_model_kwargs

    assert parse_model_kwargs(["width=2.0", "name=wide", "classifier_activation=null"]) == {
        "width": 2.0, "name": "wide", "classifier_activation": None}
    with pytest.raises(ValueError, match="KEY=VALUE"):
        parse_model_kwargs(["width"])


@pytest.mark.backend_neutral
def test_train_refuses_to_overwrite(tmp_path):
    from tn_keras.training import train

    out = str(tmp_path / "run")
    train("digits_taylornet", epochs=1, out=out, max_train_examples=64, verbose=0)
    with pytest.raises(FileExistsError, match="overwrite"):
        train("digits_taylornet", epochs=1, out=out, max_train_examples=64, verbose=0)


@pytest.mark.backend_neutral
def test_train_rejects_unknown_strategy():
    from tn_keras.training import train

    with pytest.raises(ValueError, match="strategy"):
        train("digits_taylornet", epochs=1, strategy="tpu", max_train_examples=64)


def test_resume_continues_from_the_backup(tmp_path):
    """An interrupted run (killed mid-way) resumes where its backup left off."""
    out = str(tmp_path / "run")
    script = textwrap.dedent(f"""
        import keras
        from tn_keras.training import train

        class Interrupt(keras.callbacks.Callback):
            def on_epoch_end(self, epoch, logs=None):
                if epoch == 1:
                    raise SystemExit(3)  # as if the machine went away after two epochs

        train("digits_taylornet", epochs=4, out={out!r}, max_train_examples=128, verbose=0,
              callbacks=[Interrupt()])
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            env=ENV, timeout=600)
    assert result.returncode == 3, result.stderr[-2000:]
    assert os.path.isdir(os.path.join(out, "backup"))
    assert not os.path.exists(os.path.join(out, "manifest.json"))
    _run([sys.executable, "-m", "tn_keras.cli", "train", "digits_taylornet", "--epochs", "4",
          "--max-train-examples", "128", "--out", out, "--resume"])
    with open(os.path.join(out, "training_log.csv")) as f:
        epochs = [line.split(",")[0] for line in f.read().strip().splitlines()[1:]]
    assert epochs == ["0", "1", "2", "3"]  # two before the interruption, two after
    assert os.path.isfile(os.path.join(out, "manifest.json"))


@pytest.mark.slow
def test_mirrored_strategy_on_two_logical_cpus(tmp_path):
    out = str(tmp_path / "mirrored")
    script = textwrap.dedent(f"""
        import tensorflow as tf
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        from tn_keras.cli import main
        import sys
        sys.exit(main(["train", "digits_taylornet", "--epochs", "1", "--strategy", "mirrored",
                       "--max-train-examples", "256", "--out", {out!r}]))
    """)
    result = _run([sys.executable, "-c", script])
    assert "test_accuracy" in result.stdout
    assert zoo.load("digits_taylornet", weights=out).output_shape == (None, 10)


def _free_ports(n):
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


@pytest.mark.slow
def test_multiworker_strategy_with_two_workers_on_localhost(tmp_path):
    workers = [f"127.0.0.1:{p}" for p in _free_ports(2)]
    outs = [str(tmp_path / f"worker{i}") for i in range(2)]
    processes = []
    for index in range(2):
        env = dict(ENV, TF_CONFIG=json.dumps(
            {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}))
        processes.append(subprocess.Popen(
            [sys.executable, "-m", "tn_keras.cli", "train", "digits_taylornet", "--epochs", "1",
             "--strategy", "multiworker", "--max-train-examples", "256", "--out", outs[index]],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    try:
        results = [p.communicate(timeout=600) for p in processes]
    finally:
        for p in processes:
            p.kill()
    for p, (_, err) in zip(processes, results):
        assert p.returncode == 0, err[-3000:]
    # The chief (worker 0) writes the checkpoint; the other worker leaves nothing behind.
    assert zoo.load("digits_taylornet", weights=outs[0]).output_shape == (None, 10)
    assert not os.path.exists(os.path.join(outs[1], "manifest.json"))


def test_cli_list_info_and_errors():
    result = _run([sys.executable, "-m", "tn_keras.cli", "list", "mnist*"])
    assert result.stdout.split() == ["mnist7_taylor", "mnist_convnet_relu", "mnist_taylornet"]
    info = json.loads(_run([sys.executable, "-m", "tn_keras.cli", "info",
                            "mnist7_taylor"]).stdout)
    assert info["parameters"] == 12_750 and info["dataset"] == "mnist7x7"
    bad = subprocess.run([sys.executable, "-m", "tn_keras.cli", "info", "mnist_taylornett"],
                         capture_output=True, text=True, env=ENV)
    assert bad.returncode == 2
    assert "Did you mean: mnist_taylornet" in bad.stderr


def test_cli_predict_reads_images(tmp_path):
    from PIL import Image

    from tn_keras import datasets
    from tn_keras.training import train

    out = str(tmp_path / "digits")
    train("digits_taylornet", epochs=1, out=out, max_train_examples=64, verbose=0)
    x, _ = datasets.load("digits", "test")
    paths = []
    for i in range(2):
        path = str(tmp_path / f"digit{i}.png")
        Image.fromarray(np.asarray(x[i, :, :, 0])).save(path)
        paths.append(path)
    result = _run([sys.executable, "-m", "tn_keras.cli", "predict", "digits_taylornet", *paths,
                   "--weights", out, "--top-k", "2"])
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 2 and all(line.startswith(str(tmp_path)) for line in lines)
    bad = subprocess.run([sys.executable, "-m", "tn_keras.cli", "predict", "digits_taylornet",
                          str(tmp_path / "missing.png"), "--weights", out],
                         capture_output=True, text=True, env=ENV)
    assert bad.returncode == 2 and "missing.png" in bad.stderr
