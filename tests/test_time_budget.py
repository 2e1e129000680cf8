"""``train(..., time_budget=...)`` / ``tn-keras train --time-budget``: the plan's arithmetic, its
checks, a planned run that equals the run of its planned epochs bit for bit, the one re-plan
(a restart), and ``--resume`` keeping the planned epochs. On the 8x8 digits, a few hundred
images."""
import gc
import json
import os
import warnings

import numpy as np
import pytest

from tn_keras import zoo
from tn_keras.training import TrainConfig
from tn_keras.training import time_budget as tb
from tn_keras.training.config import parse_duration

SMALL = dict(max_train_examples=256, seed=3, verbose=0)


@pytest.mark.parametrize("text, seconds", [("150m", 9000.0), ("2h", 7200.0), ("90s", 90.0),
                                           ("3600", 3600.0), (45, 45.0), ("1.5h", 5400.0),
                                           ("2h20m", 8400.0), ("1m30s", 90.0),
                                           ("1h 5m 10s", 3910.0)])
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "0", "-5m", "10d", "m", "nan", True, "1e9999",
                                  "20m2h", "2h2h", "h", "5 m s", "2h30"])
def test_bad_durations_name_the_field(text):
    with pytest.raises(ValueError, match=r"^time_budget must be a positive duration"):
        parse_duration(text)


def test_epochs_and_a_budget_are_refused_together():
    with pytest.raises(ValueError, match=r"^Pass epochs or time_budget, not both"):
        TrainConfig(epochs=3, time_budget="10m")
    assert TrainConfig(time_budget="10m").time_budget == 600.0


def test_plan_arithmetic_and_a_budget_too_short():
    # 100 steps of 0.5 s = 50 s an epoch; 1000 s - 30 spent - 20 evaluation = 950 s: 19 epochs.
    assert tb.plan_epochs(1000, 30, 100, 0.5, 20) == 19
    assert tb.plan_epochs(80, 10, 100, 0.5, 20) == 1
    with pytest.raises(ValueError, match=r"time_budget=60 s is too short: one epoch takes "
                                         r"about 50 s"):
        tb.plan_epochs(60, 10, 100, 0.5, 20)
    # A third of a step per image, once plain and once per TTA view.
    assert tb.evaluation_seconds(0.3, 100, 1000, 0) == pytest.approx(1.0)
    assert tb.evaluation_seconds(0.3, 100, 1000, 3) == pytest.approx(4.0)


def _watch_first_epoch(planned_epochs):
    """A `BudgetWatch` through a first epoch of 4 steps whose timed steps take 2 s (the plan
    said 1 s), ending at 7 s; returns the re-plan it raised, or None."""
    plan = tb.TimePlan(budget_seconds=100.0, steps_per_epoch=4, seconds_per_step=1.0,
                       evaluation_seconds=2.0, spent_seconds=0.0, epochs=planned_epochs)
    ticks = iter([0.0, 1.0, 3.0, 5.0, 7.0])  # the ends of steps 1-4 (step 1 traces), then now
    watch = tb.BudgetWatch(plan, started=0.0, clock=lambda: next(ticks))
    for batch in range(4):
        watch.on_train_batch_end(batch)
    try:
        watch.on_epoch_end(0)
    except tb.Replan as replan:
        return replan.plan
    return None


@pytest.mark.parametrize("planned, restarted", [(20, True), (12, True), (11, False),
                                                (10, False), (9, True), (3, True)])
def test_budget_watch_restarts_only_when_it_pays(planned, restarted):
    # Steps of (5 - 1) / 2 = 2 s from the timed steps, the evaluation scaled to 4 s, 7 s
    # spent: (100 - 7 - 4) // (4 * 2) = 11 epochs fit from now. A restart, which throws the
    # first epoch away, is made over the budget (more than 11 planned) or for at least two
    # epochs more (9 or fewer planned); 10 or 11 planned go on.
    new = _watch_first_epoch(planned)
    assert (new is not None) == restarted
    if new is not None:
        assert (new.epochs, new.seconds_per_step, new.evaluation_seconds) == (11, 2.0, 4.0)
        assert (new.spent_seconds, new.replanned_from) == (7.0, planned)


def _slow_steps(monkeypatch, replan_to=None):
    """Measured steps of 1 s (so a one-minute budget plans a handful of epochs on any
    machine), and a `BudgetWatch` that goes on, or re-plans to ``replan_to`` epochs."""
    import dataclasses

    monkeypatch.setattr(tb, "measure_step_seconds", lambda *args, **kwargs: 1.0)

    def on_epoch_end(self, epoch, logs=None):
        if replan_to is not None and epoch == 0:
            raise tb.Replan(dataclasses.replace(self.plan, epochs=replan_to,
                                                replanned_from=self.plan.epochs))

    monkeypatch.setattr(tb.BudgetWatch, "on_epoch_end", on_epoch_end)


@pytest.mark.backend_neutral
def test_a_budgeted_run_is_the_run_of_its_planned_epochs(tmp_path, monkeypatch):
    from tn_keras.training import train

    _slow_steps(monkeypatch)
    budgeted = str(tmp_path / "budget")
    _, manifest = train("digits_taylornet", time_budget="60s", out=budgeted, **SMALL)
    plan = manifest["training"]["time_plan"]
    epochs = manifest["training"]["epochs"]
    assert plan["epochs"] == epochs >= 1 and plan["budget_seconds"] == 60.0
    assert (plan["steps_per_epoch"], plan["seconds_per_step"]) == (8, 1.0)
    # 360 test images, a forward pass a third of a step of 32: 3.75 s.
    assert plan["evaluation_seconds"] == pytest.approx(3.75)
    assert epochs == (60 - plan["spent_seconds"] - 3.75) // 8
    assert f"--epochs {epochs} " in manifest["training"]["command"]
    assert "--time-budget" not in manifest["training"]["command"]
    assert not os.path.exists(os.path.join(budgeted, tb.PLAN_FILE))  # the manifest has it
    # The command it records repeats it, bit for bit: the measurement changed nothing.
    again = str(tmp_path / "epochs")
    train("digits_taylornet", epochs=epochs, out=again, **SMALL)
    for a, b in zip(zoo.load("digits_taylornet", weights=budgeted).get_weights(),
                    zoo.load("digits_taylornet", weights=again).get_weights()):
        np.testing.assert_array_equal(a, b)


def test_a_replan_restarts_from_scratch_once(tmp_path, monkeypatch):
    """The re-plan after the first epoch (its arithmetic is tested above) restarts the run:
    the checkpoint, its log and the manifest are those of the re-planned epochs."""
    from tn_keras.training import train

    _slow_steps(monkeypatch, replan_to=2)
    out = str(tmp_path / "replanned")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _, manifest = train("digits_taylornet", time_budget="60s", out=out, **SMALL)
        gc.collect()
    # The stopped first attempt's log file was closed, not left to the garbage collector.
    assert not [w for w in caught if issubclass(w.category, ResourceWarning)
                and "training_log.csv" in str(w.message)]
    plan = manifest["training"]["time_plan"]
    assert manifest["training"]["epochs"] == plan["epochs"] == 2
    assert plan["replanned_from"] >= 1
    with open(os.path.join(out, "training_log.csv")) as f:
        rows = f.read().splitlines()[1:]
    assert [r.split(",")[0] for r in rows] == ["0", "1"]  # the discarded epoch is gone
    assert sorted(os.listdir(out)) == ["README.md", "digits_taylornet.keras", "manifest.json",
                                       "training_log.csv"]


def test_resume_keeps_the_planned_epochs(tmp_path):
    from tn_keras.training import train
    from tn_keras.training import backup

    out = str(tmp_path / "run")
    os.makedirs(out)
    plan = tb.TimePlan(budget_seconds=600.0, steps_per_epoch=8, seconds_per_step=0.01,
                       evaluation_seconds=1.0, spent_seconds=2.0, epochs=2)
    tb.write_plan(out, plan)
    # As a killed budgeted run leaves it: its plan, and the settings it recorded after planning.
    backup.record_settings(out, "digits_taylornet",
                           TrainConfig(epochs=2, batch_size=32, **SMALL))
    _, manifest = train("digits_taylornet", time_budget="10m", out=out, resume=True, **SMALL)
    assert manifest["training"]["epochs"] == 2
    assert manifest["training"]["time_plan"] == json.loads(json.dumps(plan.as_dict()))


def test_a_bad_plan_file_is_one_line(tmp_path):
    (tmp_path / tb.PLAN_FILE).write_text('{"epochs": "x"}')
    with pytest.raises(ValueError, match=r"time_plan.json is not a time plan tn_keras wrote"):
        tb.read_plan(str(tmp_path))


def test_cli_flag_builds_the_config():
    import argparse

    from tn_keras.cli import train_command

    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers()
    train_command.add_parser(sub)
    args = parser.parse_args(["train", "digits_taylornet", "--time-budget", "150m"])
    assert train_command.config_from_args(args) == TrainConfig(time_budget=9000.0)
