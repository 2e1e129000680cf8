"""gpu/distill_full.py, the full-scale GPU runner, on CPU at a tiny size under JAX
with TensorFlow blocked (as on the GPU machine): it completes, stops on its budget, resumes."""
import json
import os

import pytest

from _no_tensorflow import stdout_without_tensorflow

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUNNER = os.path.join(ROOT, "gpu", "distill_full.py")
TINY = ["--datasets", "digits", "--ipc", "1,2", "--levels", "1", "--iterations", "2",
        "--real-batch", "8", "--embedding-network", "small", "--eval-seeds", "0",
        "--eval-steps", "2"]


def _run(out, *extra):
    code = (f"import runpy, sys\nsys.argv = ['distill_full.py', '--out', {out!r}, "
            f"*{TINY + list(extra)!r}]\n"
            f"try:\n    runpy.run_path({RUNNER!r}, run_name='__main__')\n"
            f"except SystemExit as e:\n    print('EXIT', e.code)\n")
    stdout = stdout_without_tensorflow(code, backend="jax", cwd=ROOT)
    return stdout


@pytest.mark.slow
def test_runner_stops_on_its_budget_and_resumes(tmp_path):
    out = str(tmp_path / "runs")
    stdout = _run(out, "--budget-s", "0")
    assert "EXIT 3" in stdout and "rerun the same command" in stdout
    assert not os.path.exists(os.path.join(out, "digits", "ipc1", "levels"))
    stdout = _run(out)
    assert "EXIT 0" in stdout
    for ipc in (1, 2):
        folder = os.path.join(out, "digits", f"ipc{ipc}")
        with open(os.path.join(folder, "run.json")) as f:
            record = json.load(f)
        assert record["settings"]["algorithm"] == "distribution-matching-full/v1"
        assert record["settings"]["per_class"] == 2 * ipc and record["ipc"] == ipc
        assert record["backend"]["keras_backend"] == "jax" and "1" in record["level_seconds"]
        with open(os.path.join(folder, "eval.json")) as f:
            rows = json.load(f)["rows"]
        assert [(r["level"], r["per_class"], r["architecture"]) for r in rows] == [
            (1, ipc, "convnet3")]
        assert os.path.getsize(os.path.join(folder, "log.txt")) > 0
    # A rerun finds everything done: the verified levels are reused, nothing is recomputed.
    before = os.path.getmtime(os.path.join(out, "digits", "ipc1", "run.json"))
    stdout = _run(out)
    assert "EXIT 0" in stdout and "reused" in stdout
    assert os.path.getmtime(os.path.join(out, "digits", "ipc1", "run.json")) == before


@pytest.mark.slow
def test_dm_iteration_benchmark_runs(tmp_path):
    import subprocess
    import sys

    out = tmp_path / "bench.json"
    result = subprocess.run(
        [sys.executable, os.path.join(ROOT, "benchmarks", "bench_dm_iteration.py"),
         "--dataset", "digits", "--ipc", "2", "--real-batch", "8", "--iterations", "2",
         "--warmup", "1", "--embedding-network", "small", "--no-dsa", "--json", str(out)],
        capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(out.read_text())
    for method in ("dm", "distribution"):
        assert report[method]["peak_rss_mb_after"] > 0
        assert report[method]["build_compile_and_warmup_seconds"] > 0
    dm, existing = (report[m]["seconds_per_iteration"] for m in ("dm", "distribution"))
    if min(dm, existing) > 0:  # two tiny iterations may not rise above the timing noise
        assert report["ratio_dm_to_distribution"] == pytest.approx(dm / existing, abs=0.01)
    else:
        assert report["ratio_dm_to_distribution"] is None
