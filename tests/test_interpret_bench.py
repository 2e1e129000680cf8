"""benchmarks/bench_interpret.py runs end to end (the expansion rows, on digits_taylornet).

It measures, it does not assert figures: this keeps the script from rotting and checks the
shape of what it writes. The CIFAR-10 rows need the real data and run in the benchmark itself.
"""
import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.slow
def test_bench_interpret_expansion_rows(tmp_path):
    out = tmp_path / "bench.json"
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", TN_KERAS_OFFLINE="1")
    result = subprocess.run(
        [sys.executable, os.path.join(ROOT, "benchmarks", "bench_interpret.py"),
         "--configs", "gradient,hessian", "--hessian-model", "digits_taylornet",
         "--json", str(out)], capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    rows = json.loads(out.read_text())["results"]
    assert rows["hessian"]["hessian_shape"] == [10, 64, 64]
    assert rows["hessian"]["ratio_to_gradient"] > 0 and rows["gradient"]["peak_rss_mb"] > 0
