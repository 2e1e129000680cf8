"""The GPU machine's scripts (gpu/), run here end to end on the CPU under JAX, with TensorFlow
blocked in every process they start, as on the lent machine (which has no TensorFlow)."""
import json
import os
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))
from _no_tensorflow import PRELUDE  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "gpu"))
import jobs  # noqa: E402
import receive  # noqa: E402

DIGITS = ["digits_taylornet", "--batch-size", "32", "--max-train-examples", "256",
          "--max-eval-examples", "60"]


def _run_jobs(tmp_path, plan, deadline):
    """gpu/jobs.py in a child process whose children cannot import TensorFlow either."""
    site = tmp_path / "site"
    site.mkdir(exist_ok=True)
    (site / "sitecustomize.py").write_text(PRELUDE)
    plan_path = tmp_path / "plan.json"
    plan_path.write_text(json.dumps(plan))
    out = tmp_path / "out"
    out.mkdir(exist_ok=True)
    for old in out.iterdir():
        old.unlink()  # $OUT starts empty at every call
    env = dict(os.environ, KERAS_BACKEND="jax", TN_KERAS_OFFLINE="1",
               PYTHONPATH=os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]))
    result = subprocess.run(
        [sys.executable, os.path.join(ROOT, "gpu", "jobs.py"), str(plan_path), "--runs",
         str(tmp_path / "runs"), "--out", str(out), "--deadline", str(deadline),
         "--overhead", "5", "--part-mb", "0.2"],
        capture_output=True, text=True, env=env, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return json.loads((out / "summary.json").read_text()), out


@pytest.mark.slow
def test_probe_fit_run_pack_and_receive(tmp_path):
    plan = {"env": {"XLA_PYTHON_CLIENT_MEM_FRACTION": "0.2"}, "probe_examples": 64,
            "jobs": [{"id": "fitted", "train": DIGITS, "epochs": "fit", "max_epochs": 2,
                      "train_examples": 256},
                     {"id": "fixed", "train": DIGITS + ["--seed", "1"], "epochs": 1}]}
    report, out = _run_jobs(tmp_path, plan, deadline=600)
    fitted, fixed = report["jobs"]["fitted"], report["jobs"]["fixed"]
    assert fitted["status"] == 0 and fixed["status"] == 0, report
    assert fitted["planned_epochs"] == fitted["epochs_done"] == 2  # fits easily: max_epochs
    assert fixed["planned_epochs"] == fixed["epochs_done"] == 1
    assert "--epochs 2" in fitted["command"] and "--seed 1" in fixed["command"]
    probe = json.loads((tmp_path / "runs" / "probe.json").read_text())
    assert set(probe) == {"fitted"} and probe["fitted"] > 0
    parts = sorted(str(out / name) for name in report["parts"])
    assert len(parts) > 1 and all(os.path.getsize(p) <= 200_000 for p in parts)
    folders = receive.unpack(parts, str(tmp_path / "received"))
    assert [os.path.basename(f) for f in folders] == ["fitted", "fixed"]
    assert not os.path.exists(os.path.join(folders[0], "backup"))  # backups never travel
    name, metrics = receive.verify_run(folders[0])
    assert name == "digits_taylornet" and metrics["test_examples"] == 60
    with pytest.raises(SystemExit, match="already exists"):
        receive.unpack(parts, str(tmp_path / "received"))


@pytest.mark.slow
def test_a_job_stopped_at_the_deadline_resumes_in_the_next_call(tmp_path):
    # Far more epochs than any machine runs in the deadline (an idle one does 400 in 40 s);
    # 40 s leaves a loaded one about 20 s of training after the start-up and the overhead.
    plan = {"jobs": [{"id": "long", "train": DIGITS, "epochs": 10**6}]}
    report, _ = _run_jobs(tmp_path, plan, deadline=40)
    first = report["jobs"]["long"]
    assert first["status"] == "stopped at the deadline" and 0 < first["epochs_done"] < 10**6
    plan["jobs"][0]["epochs"] = 3  # ignored: the plan of the first call holds
    report, _ = _run_jobs(tmp_path, plan, deadline=40)
    second = report["jobs"]["long"]
    assert second["planned_epochs"] == 10**6
    assert second["epochs_done"] > first["epochs_done"]  # resumed, not restarted


def test_epochs_fit_the_time_left():
    job = {"train_examples": 50_000, "max_epochs": 120}
    # 1 ms per image: 50 s per epoch; 530 s left minus 30 s overhead: 10 epochs.
    assert jobs.choose_epochs(job, 1e-3, 530, 30) == 10
    assert jobs.choose_epochs(job, 1e-6, 530, 30) == 120  # capped by max_epochs
    assert jobs.choose_epochs(job, 1.0, 10, 30) == 1  # at least one


def test_jobs_compared_at_equal_training_get_the_fewest_epochs(tmp_path):
    path = tmp_path / "plan.json"
    jobs_ = [{"id": name} for name in ("a", "b", "c", "d")]
    path.write_text(json.dumps({"equal_epochs": ["a", "b"], "jobs": jobs_}))
    plan = jobs.read_plan(str(path))
    assert plan["equal_epochs"] == [["a", "b"]]
    fitted = {"a": 80, "b": 55, "c": 120, "d": 30}
    assert jobs.equalise(fitted, plan["equal_epochs"]) == {"a": 55, "b": 55, "c": 120, "d": 30}
    assert jobs.equalise(fitted, [["a", "c"], ["b", "d"]]) == {"a": 80, "b": 30, "c": 80,
                                                               "d": 30}
    for bad in (["a", "x"], [["a"], ["y"]], "a"):
        path.write_text(json.dumps({"equal_epochs": bad, "jobs": jobs_}))
        with pytest.raises(SystemExit, match="equal_epochs must list groups of job ids"):
            jobs.read_plan(str(path))


def test_duplicate_job_ids_are_refused(tmp_path):
    path = tmp_path / "plan.json"
    path.write_text(json.dumps({"jobs": [{"id": "a"}, {"id": "a"}]}))
    with pytest.raises(SystemExit, match="unique"):
        jobs.read_plan(str(path))


def test_the_shipped_plans_name_registered_models_with_valid_arguments():
    from tn_keras import zoo
    from tn_keras.cli import build_parser
    from tn_keras.cli.train_command import config_from_args
    from tn_keras.zoo.registry import check_builder_kwargs
    from tn_keras.zoo.registry import get_spec

    parser = build_parser()
    for name in os.listdir(os.path.join(ROOT, "gpu")):
        if name.endswith(".json"):
            plan = jobs.read_plan(os.path.join(ROOT, "gpu", name))
            for job in plan["jobs"]:
                assert job["train"][0] in zoo.list(), (name, job["id"])
                # The flags parse and the builder takes the model kwargs: a typo fails here,
                # not after the data has crossed to the lent machine.
                args = parser.parse_args(["train", *jobs.train_command(job, 1, "o")[4:]])
                kwargs = config_from_args(args).model_kwargs
                check_builder_kwargs(get_spec(job["train"][0]), kwargs)
            # A plan that compares models says so: its comparisons are at equal epochs.
            if "compare" in plan.get("comment", "") or "equal" in plan.get("comment", ""):
                assert plan["equal_epochs"], name


def test_staging_splits_a_shard_folder_into_calls_with_the_index_last(tmp_path):
    import stage

    folder = tmp_path / "cifar10.shards"
    folder.mkdir()
    for name, size in [("x_train-00000.xz", 60), ("x_train-00001.xz", 50), ("x_test-00000.xz", 30),
                       ("y_train-00000.xz", 5), ("index.json", 2)]:
        (folder / name).write_bytes(b"\0" * size)
    parts = stage.groups(str(folder), 100)
    assert parts == [["x_test-00000.xz", "x_train-00000.xz"],
                     ["x_train-00001.xz", "y_train-00000.xz", "index.json"]]
    assert stage.stage(str(folder), 100, 1, root=str(tmp_path)) == 2
    carried = tmp_path / ".carry" / "cifar10.shards"
    assert sorted(os.listdir(carried)) == ["index.json", "x_train-00001.xz", "y_train-00000.xz"]
    with pytest.raises(SystemExit, match="calls 0..1"):
        stage.stage(str(folder), 100, 2, root=str(tmp_path))
    with pytest.raises(SystemExit, match="smaller --max-shard-mb"):
        stage.groups(str(folder), 40)
