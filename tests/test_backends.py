"""tn_keras under every Keras backend: JAX and PyTorch without TensorFlow build, train and save;
TensorFlow loads what they saved and predicts the same; the same seed gives the same weights;
``data_parallel`` splits batches over two JAX devices; global switches are restored."""
import concurrent.futures
import contextlib
import importlib.util
import json
import os
import subprocess
import sys
import textwrap
import types

import keras
import numpy as np
import pytest

from tn_keras import datasets
from tn_keras import zoo

sys.path.insert(0, os.path.dirname(__file__))
from _no_tensorflow import assert_ran, run_without_tensorflow  # noqa: E402
from _no_tensorflow import stdout_without_tensorflow  # noqa: E402

TORCH = importlib.util.find_spec("torch") is not None
BACKENDS = ["jax", pytest.param("torch", marks=pytest.mark.skipif(
    not TORCH, reason="torch is not importable here"))]

def _run_blocked(code, backend, env=None):
    result = run_without_tensorflow(textwrap.dedent(code), backend=backend, env=env)
    assert_ran(result)
    return result


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_backend_without_tensorflow_trains_and_tensorflow_predicts_the_same(backend, tmp_path):
    if keras.backend.backend() != "tensorflow":
        pytest.skip("the second half loads the checkpoint under the TensorFlow backend")
    out = str(tmp_path / backend)
    result = _run_blocked(f"""
        import sys
        import numpy as np
        from tn_keras import datasets, zoo
        from tn_keras.training import train

        for name in zoo.list():
            model = zoo.build(name)
            print("built", name, model.count_params())
        model, manifest = train("digits_taylornet", epochs=1, out={out!r}, seed=0, verbose=0)
        x, _ = datasets.load("digits", "test")
        np.save({out!r} + "/predictions.npy", model.predict(x[:64].astype("float32"), verbose=0))
        assert "tensorflow" not in sys.modules, "TensorFlow was imported"
        print("accuracy", manifest["metrics"]["test_accuracy"])
    """, backend)
    built = [line.split()[1] for line in result.stdout.splitlines() if line.startswith("built")]
    assert built == zoo.list()
    with open(os.path.join(out, "manifest.json")) as f:
        manifest = json.load(f)
    assert manifest["versions"]["keras_backend"] == manifest["training"]["backend"] == backend
    assert manifest["versions"][backend]  # the backend's version
    # The TensorFlow backend (this process) loads the checkpoint, sha256-verified.
    model = zoo.load("digits_taylornet", weights=out, compile=False)
    x, _ = datasets.load("digits", "test")
    np.testing.assert_allclose(model.predict(x[:64].astype("float32"), verbose=0),
                               np.load(os.path.join(out, "predictions.npy")), atol=1e-5)
    if backend == "jax" and TORCH:
        # And the torch backend loads what JAX wrote (still without TensorFlow).
        _run_blocked(f"""
            import numpy as np
            from tn_keras import datasets, zoo

            model = zoo.load("digits_taylornet", weights={out!r}, compile=False)
            x, _ = datasets.load("digits", "test")
            np.testing.assert_allclose(model.predict(x[:64].astype("float32"), verbose=0),
                                       np.load({out!r} + "/predictions.npy"), atol=1e-5)
        """, "torch")


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_same_seed_same_weights(backend, tmp_path):
    """Two processes, same seed: the same weights bit for bit; another seed: other weights."""
    def weights_of(seeds, tag):
        _run_blocked(f"""
            import numpy as np
            from tn_keras.training import train

            for seed in {seeds!r}:
                model = train("digits_taylornet", epochs=2, seed=seed,
                              out={str(tmp_path)!r} + f"/{tag}{{seed}}",
                              max_train_examples=160, max_eval_examples=32,
                              verbose=0)[0]
                np.savez({str(tmp_path)!r} + f"/{tag}{{seed}}.npz", *model.get_weights())
        """, backend)
        return [np.load(str(tmp_path / f"{tag}{seed}.npz")) for seed in seeds]

    (first,), (second, other) = weights_of([5], "a"), weights_of([5, 6], "b")
    assert len(first.files) == len(second.files) > 0
    for key in first.files:
        np.testing.assert_array_equal(first[key], second[key])
    assert any(not np.array_equal(first[key], other[key]) for key in first.files)


@pytest.mark.slow
def test_data_parallel_over_two_jax_cpu_devices(tmp_path):
    out = str(tmp_path / "dp")
    result = _run_blocked(f"""
        import jax, keras
        from tn_keras.training import train

        assert len(jax.devices()) == 2, jax.devices()
        model, manifest = train("digits_taylornet", epochs=1, out={out!r}, seed=0,
                                strategy="data_parallel", max_train_examples=100,
                                max_eval_examples=64, verbose=0)
        # Each variable is laid out over both devices (replicated).
        assert all(len(v.value.sharding.device_set) == 2 for v in model.trainable_variables)
        assert keras.distribution.distribution() is None  # the scope ended with the run
        print("replicas", manifest["training"]["replicas"])
    """, "jax", env={"XLA_FLAGS": "--xla_force_host_platform_device_count=2"})
    assert "replicas 2" in result.stdout
    assert zoo.load("digits_taylornet", weights=out).output_shape == (None, 10)


@pytest.mark.backend_neutral
def test_strategies_of_other_backends_are_refused_by_name():
    from tn_keras.training.placement import STRATEGY_BACKENDS, make_placement

    backend = keras.backend.backend()
    for strategy, backends in STRATEGY_BACKENDS.items():
        if backend not in backends:
            with pytest.raises(ValueError, match=f"strategy='{strategy}' needs the Keras "
                                                 f"backend.*KERAS_BACKEND is '{backend}'"):
                make_placement(strategy)
    assert make_placement(None).replicas == 1


@pytest.mark.backend_neutral
def test_versions_record_the_backend():
    from tn_keras.utils.versions import software_versions

    versions = software_versions()
    backend = keras.backend.backend()
    assert versions["keras_backend"] == backend and versions[backend]
    assert versions["keras"] == keras.__version__


@pytest.mark.slow
@pytest.mark.backend_neutral
def test_mixed_precision_run_restores_the_global_switches(tmp_path):
    from tn_keras.training import train

    before = keras.mixed_precision.dtype_policy().name
    determinism = _determinism_enabled()
    model, manifest = train("digits_taylornet", epochs=1, out=str(tmp_path / "mp"),
                            mixed_precision=True, max_train_examples=64, max_eval_examples=32,
                            verbose=0)
    assert keras.mixed_precision.dtype_policy().name == before == "float32"
    assert _determinism_enabled() == determinism
    assert manifest["training"]["mixed_precision"] is True
    assert "--mixed-precision" in manifest["training"]["command"]
    polycg = [layer for layer in model.layers if type(layer).__name__ == "PolyCG"]
    assert polycg and all(layer.dtype_policy.name == "mixed_bfloat16" for layer in polycg)
    assert all(w.dtype == "float32" for w in model.trainable_weights)
    loaded = zoo.load("digits_taylornet", weights=str(tmp_path / "mp"), compile=False)
    assert {layer.dtype_policy.name for layer in loaded.layers
            if type(layer).__name__ == "PolyCG"} == {"mixed_bfloat16"}


def _determinism_enabled():
    backend = keras.backend.backend()
    if backend == "tensorflow":
        from tensorflow.python.framework import config

        return config.is_op_determinism_enabled()
    if backend == "torch":
        import torch

        return torch.are_deterministic_algorithms_enabled()
    return None


class _TwoWorkers:
    """What the fixes read of a MultiWorkerMirroredStrategy: 2 replicas, 1 device on this worker."""

    num_replicas_in_sync = 2
    extended = types.SimpleNamespace(worker_devices=("/job:worker/task:0/device:CPU:0",))


@pytest.mark.parametrize("run_fails", [False, True])
def test_multiworker_fixes_are_undone_after_the_run(monkeypatch, run_fails):
    if keras.backend.backend() != "tensorflow":
        pytest.skip("tf.distribute: TensorFlow backend only")
    from tn_keras.training import multiworker_workarounds as fixes

    model = zoo.build("digits_taylornet")
    model.train_function = "traced before"
    monkeypatch.setattr(fixes, "build_before_fit", lambda m, s, d: setattr(
        m, "_maybe_symbolic_build", lambda **kw: None))
    with contextlib.suppress(RuntimeError):
        with fixes.multiworker_fixes(model, _TwoWorkers(), None):
            assert {"_maybe_symbolic_build", "train_step", "test_step"} <= set(model.__dict__)
            assert model.train_function is None  # traced again, with the wrapped steps
            if run_fails:
                raise RuntimeError("fit failed")
    assert not {"_maybe_symbolic_build", "train_step", "test_step"} & set(model.__dict__)
    assert model.train_step.__func__ is type(model).train_step
    assert model.train_function is None and model.test_function is None


def test_multiworker_logs_leave_the_step_as_vectors():
    if keras.backend.backend() != "tensorflow":
        pytest.skip("tf.distribute: TensorFlow backend only")
    import tensorflow as tf

    from tn_keras.training import multiworker_workarounds as fixes

    step = fixes._logs_as_vectors(lambda data: {"loss": tf.constant(2.5),
                                                "per_class": tf.constant([1.0, 2.0])})
    logs = step(None)
    assert logs["loss"].shape == (1,) and float(logs["loss"][0]) == 2.5
    assert logs["per_class"].shape == (2,)
    assert fixes.is_multi_worker(_TwoWorkers())
    assert not fixes.is_multi_worker(tf.distribute.MirroredStrategy(["/cpu:0"]))


# One worker of two: targets 0 on worker 0 and 10 on worker 1, a zero model that does not learn,
# so each worker's own squared error is 0 or 100 and the mean over both is 50.
_WORKER = """
import json, os
import numpy as np, tensorflow as tf, keras
from tn_keras.training.multiworker_workarounds import multiworker_fixes
index = json.loads(os.environ["TF_CONFIG"])["task"]["index"]
strategy = tf.distribute.MultiWorkerMirroredStrategy()
options = tf.data.Options()
options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
data = tf.data.Dataset.from_tensor_slices((np.ones((32, 4), "float32"), np.full(
    (32, 1), 10.0 * index, "float32"))).batch(16).with_options(options)
with strategy.scope():
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1, kernel_initializer="zeros")])
    model.compile(optimizer=keras.optimizers.SGD(0.0), loss="mse")
batches = []
log = keras.callbacks.LambdaCallback(
    on_train_batch_end=lambda batch, logs: batches.append(float(logs["loss"])))
with multiworker_fixes(model, strategy, data):
    history = model.fit(data, epochs=1, verbose=0, validation_data=data, callbacks=[log])
print(json.dumps({"batches": batches, **{k: v[-1] for k, v in history.history.items()}}))
"""


@pytest.mark.slow
def test_multiworker_logs_are_the_mean_over_workers():
    if keras.backend.backend() != "tensorflow":
        pytest.skip("tf.distribute: TensorFlow backend only")
    from test_training import _free_ports

    workers = [f"127.0.0.1:{port}" for port in _free_ports(2)]
    env = [dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", TF_CONFIG=json.dumps(
        {"cluster": {"worker": workers}, "task": {"type": "worker", "index": i}}))
        for i in range(2)]
    # Both workers must run at once (each waits for the other); subprocess.run kills on timeout.
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda e: subprocess.run(
            [sys.executable, "-c", _WORKER], env=e, capture_output=True, text=True, timeout=300),
            env))
    for result in results:
        assert result.returncode == 0, result.stderr[-3000:]
        logs = json.loads(result.stdout.strip().splitlines()[-1])
        assert logs == {"batches": [50.0, 50.0], "loss": 50.0, "val_loss": 50.0}


@pytest.mark.slow
def test_backend_benchmark_runs_end_to_end(tmp_path):
    import subprocess

    out = str(tmp_path / "bench.json")
    script = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                          "benchmarks", "bench_backends.py")
    result = subprocess.run([sys.executable, script, "--model", "digits_taylornet", "--steps",
                             "2", "--batch", "8", "--backends", "jax", "--json", out],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    with open(out) as f:
        (row,) = json.load(f)["rows"]
    assert row["backend"] == "jax" and row["median_step_s"] > 0 and row["peak_rss_mib"] > 0


@pytest.mark.slow
def test_cli_without_tensorflow(tmp_path):
    image = str(tmp_path / "digit.png")
    stdout = stdout_without_tensorflow(f"""
        import contextlib, io, json
        import numpy as np
        from PIL import Image
        from tn_keras import datasets
        from tn_keras.cli import main

        x, y = datasets.load("digits", "test")
        Image.fromarray(x[0, :, :, 0].astype(np.uint8)).save({image!r})
        for argv in (["list", "digits*"], ["info", "digits_taylornet"],
                     ["evaluate", "digits_taylornet", "--max-examples", "50"],
                     ["predict", "digits_taylornet", {image!r}, "--top-k", "1"]):
            assert main(argv) == 0, argv
        print("label", int(y[0]))
        try:
            main(["export", "digits_taylornet", "--format", "tflite", "--out", "x.tflite"])
        except SystemExit as e:
            print("export:", e)
    """)
    out = stdout
    label = out.split("label ")[1].split()[0]
    assert f"{image}: {label} " in out  # the shipped checkpoint reads the digit
    assert "export: tn-keras export: error: SavedModel and TFLite are TensorFlow formats" in out
