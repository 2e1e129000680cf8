"""A "dm" level saved part-way (`tn_keras.distill.level_progress`): paused by its time budget
and resumed, it ends with the pixels of an uninterrupted run, bit for bit; a saved state made
with other settings is refused; the CLI calls a pause exit 6 (tiny synthetic data)."""
import os

import numpy as np
import pytest

from tn_keras import distill as D
from tn_keras.distill import class_matching as cm
from tn_keras.distill import level_progress
from tn_keras.utils.paused import RunPaused

from test_distill import synthetic_data

pytestmark = pytest.mark.backend_neutral

TINY = dict(method="dm", steps=6, real_batch=4, embedding_network="small", dsa=False,
            levels=1, per_class=8, seed=2)


def _pause_after(monkeypatch, calls):
    """The deadline's clock reads real time for ``calls`` checks, then a day later."""
    import time

    count = {"n": 0}

    def now():
        count["n"] += 1
        return time.time() + (0 if count["n"] <= calls else 86400)

    monkeypatch.setattr(cm, "_now", now)


def test_a_paused_level_resumes_to_the_uninterrupted_pixels(tmp_path, monkeypatch):
    x, y = synthetic_data()
    whole = D.distill(None, x, y, export_dir=str(tmp_path / "whole"), **TINY)
    monkeypatch.setattr(level_progress, "SAVE_EVERY", 2)
    out = str(tmp_path / "paused")
    _pause_after(monkeypatch, 2)  # iterations 1 and 2 go on, 3 pauses
    with pytest.raises(RunPaused, match=r"ran out at iteration 3 of 6; .* --resume"):
        D.distill(None, x, y, export_dir=out, time_budget="1h", **TINY)
    saved = level_progress.progress_path(out, 1)
    assert os.path.isfile(saved) and not os.path.exists(os.path.join(out, "level_1"))
    with np.load(saved) as data:
        assert int(data["iteration"]) == 3 and len(data["losses"]) == 3
    # Resumed twice more (paused again at 5), then to the end.
    _pause_after(monkeypatch, 1)
    with pytest.raises(RunPaused, match=r"iteration 5 of 6"):
        D.distill(None, x, y, export_dir=out, resume=True, time_budget="1h", **TINY)
    monkeypatch.setattr(cm, "_now", lambda: 0.0)
    resumed = D.distill(None, x, y, export_dir=out, resume=True, **TINY)
    np.testing.assert_array_equal(resumed[1].x, whole[1].x)
    assert not os.path.exists(saved)  # spent once the level is written
    x1, _ = D.load_level(out, 1)
    np.testing.assert_array_equal(x1, whole[1].x)


def test_saved_progress_of_other_settings_is_refused(tmp_path, monkeypatch):
    # (Through distill, level 0's manifest refuses other settings first; the progress file
    # checks its own record too, for a file copied or left from another run.)
    x, y = synthetic_data()
    out = str(tmp_path / "run")
    _pause_after(monkeypatch, 1)
    with pytest.raises(RunPaused):
        D.distill(None, x, y, export_dir=out, time_budget=3600, **TINY)
    path = level_progress.progress_path(out, 1)
    other = level_progress.LevelProgress(path, {"algorithm": {"learning_rate": 2.0}, "level": 1})
    with pytest.raises(ValueError, match=r"\.progress-level_1\.npz was saved by a run with "
                                         r"other settings"):
        other.restore(None, None)
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    bad = level_progress.LevelProgress(str(tmp_path / "bad.npz"), {})
    with pytest.raises(ValueError, match=r"bad\.npz is not a level's saved progress"):
        bad.restore(None, None)


def test_time_budget_belongs_to_dm_and_is_not_recorded():
    with pytest.raises(ValueError, match=r"^time_budget applies to method='dm' only"):
        D.DistillConfig(method="distribution", time_budget="1h").resolved()
    with pytest.raises(ValueError, match=r"^time_budget must be a positive duration"):
        D.DistillConfig(method="dm", time_budget="soon").resolved()
    settings = D.DistillConfig(method="dm", time_budget="2h").resolved()
    assert settings.time_budget == 7200.0 and "time_budget" not in settings.as_dict()


def test_the_cli_calls_a_pause_exit_6():
    from tn_keras.cli import EXIT_CODES, error_line, exit_code

    paused = RunPaused("the time budget ran out at iteration 3 of 6; ...")
    assert exit_code(paused) == EXIT_CODES["paused"] == 6
    assert error_line("distill", paused) == (
        "tn-keras distill: paused: the time budget ran out at iteration 3 of 6; ...")
