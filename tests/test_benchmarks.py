"""The benchmark scripts in benchmarks/ run end to end (on the offline 8x8 digits, few images).

They measure, they do not assert figures: these tests only keep them from rotting as the
library changes, and check the shape of what they write.
"""
import json
import os
import shutil
import subprocess
import sys

import pytest

from tn_keras import zoo

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", TN_KERAS_OFFLINE="1")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not zoo.list("digits_taylornet", pretrained=True),
                       reason="needs the shipped digits_taylornet checkpoint"),
]


def _run_benchmark(script, *args):
    result = subprocess.run([sys.executable, os.path.join(ROOT, "benchmarks", script), *args],
                            capture_output=True, text=True, env=ENV, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]


def test_int8_activation_ranges_benchmark(tmp_path):
    out = str(tmp_path / "ranges.json")
    _run_benchmark("int8_activation_ranges.py", "--models", "digits_taylornet",
                   "--test-images", "40", "--json", out)
    with open(out) as f:
        row = json.load(f)["digits_taylornet"]
    assert row["test_images"] == 40
    assert set(row["per_quantile"]) == set(row["auto"]["on_calibration_images"])
    assert str(row["auto"]["quantile"]) in row["per_quantile"]


def test_int8_sensitivity_benchmark(tmp_path):
    out = str(tmp_path / "sensitivity.json")
    _run_benchmark("int8_sensitivity.py", "--models", "digits_taylornet", "--test-images", "40",
                   "--json", out)
    with open(out) as f:
        row = json.load(f)["digits_taylornet"]
    assert 0 <= row["all_int8"] <= 1 and 0 <= row["all_listed_float"] <= 1
    # Every layer with ops of its own is studied, and some of them own tensors.
    assert {"cg1", "logits"} <= set(row["one_layer_float"])
    assert any(v["float_tensors"] for v in row["one_layer_float"].values())


def test_int8_calibration_benchmark(tmp_path):
    levels = str(tmp_path / "levels")
    result = subprocess.run([sys.executable, "-m", "tn_keras.cli", "distill", "digits_taylornet",
                             "--per-class", "8", "--levels", "1", "--steps", "2", "--out",
                             levels], capture_output=True, text=True, env=ENV, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    out = str(tmp_path / "calibration.json")
    _run_benchmark("int8_calibration.py", "--model", "digits_taylornet", "--distilled", levels,
                   "--levels", "1", "--test-images", "40", "--json", out)
    with open(out) as f:
        results = json.load(f)
    level = results["levels"]["1"]
    assert level["distilled"]["images"] == level["random_real"]["images"] == 40
    assert level["distilled"]["calibration"] == "distilled level 1 (level_1)"


def test_bench_distill(tmp_path):
    out = str(tmp_path / "report.json")
    _run_benchmark("bench_distill.py", "--model", "digits_taylornet", "--per-class", "8", "--levels", "2",
         "--steps", "2", "--method", "distribution", "--out", str(tmp_path / "levels"),
         "--json", out)
    with open(out) as f:
        report = json.load(f)
    assert report["images_per_class"] == [8, 4, 2] and report["method"] == "distribution"
    assert report["steps"] == 2 and report["peak_rss_mb"] > 0


def test_eval_distill(tmp_path):
    out = str(tmp_path / "eval.json")
    _run_benchmark("eval_distill.py", "--model", "digits_taylornet", "--per-class", "8", "--levels", "1",
         "--steps", "2", "--scratch-steps", "2", "--seeds", "0", "--test-examples", "50",
         "--export", str(tmp_path / "levels"), "--json", out)
    with open(out) as f:
        report = json.load(f)
    assert [row["level"] for row in report["rows"]] == [0, 1]
    assert report["distill_settings"]["steps"] == 2
    assert report["distill_settings"]["method"] == "embedding"
    assert {"reference_distilled", "scratch_distilled", "scratch_random_real"} <= set(
        report["rows"][1])


def test_similarity_nulls(tmp_path):
    """An export with its level 0, then without it (as a shipped cascade): level 0 rebuilt from
    the recorded seed and per_class gives the same nulls, and every image's start is found."""
    levels = str(tmp_path / "levels")
    result = subprocess.run([sys.executable, "-m", "tn_keras.cli", "distill", "digits_taylornet",
                             "--per-class", "8", "--levels", "2", "--steps", "1", "--method",
                             "distribution", "--init", "first", "--out", levels],
                            capture_output=True, text=True, env=ENV, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    reports = []
    for name in ("with_level_0.json", "rebuilt.json"):
        _run_benchmark("similarity_nulls.py", levels, "--json", str(tmp_path / name))
        with open(tmp_path / name) as f:
            reports.append(json.load(f)["reports"][0])
        shutil.rmtree(os.path.join(levels, "level_0"), ignore_errors=True)
    exported, rebuilt = reports
    assert (exported["level_0"], rebuilt["level_0"]) == ("the export's", "rebuilt")
    assert rebuilt["start_found"] == 1.0
    assert exported["curves"]["averaging_only"] == rebuilt["curves"]["averaging_only"]
    curves = rebuilt["curves"]
    assert set(curves) == {"distilled", "averaging_only", "random_real"}
    assert [curves["random_real"][str(a)]["3"]["n"] for a in range(3)] == [8, 4, 2]
    assert curves["distilled"]["0"] == curves["averaging_only"]["0"]


def test_time_to_accuracy_resumes_and_plots(tmp_path):
    """A model evaluated after every epoch; run again, the benchmark resumes the finished run
    instead of training it again, and reports the same rows."""
    runs, report, png = str(tmp_path / "runs"), str(tmp_path / "t.json"), str(tmp_path / "t.png")
    common = ["--models", "digits_taylornet", "--out", runs,
              "--max-train-examples", "128", "--test-images", "100", "--json", report,
              "--png", png]
    reports = []
    for _ in range(2):
        _run_benchmark("time_to_accuracy.py", "--epochs", "2", *common)
        with open(report) as f:
            reports.append(json.load(f))
    assert reports[0] == reports[1]
    models = reports[0]["models"]
    assert list(models) == ["digits_taylornet"]
    rows = models["digits_taylornet"]["rows"]
    assert [row["epoch"] for row in rows] == [1, 2]
    assert 0 < rows[0]["seconds"] < rows[1]["seconds"]  # cumulative training time
    assert all(0 <= row["test_accuracy"] <= 1 for row in rows)
    with open(png, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
