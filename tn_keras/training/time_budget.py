"""Plan a run's epochs from a wall-clock budget: ``tn-keras train NAME --time-budget 150m``.

With ``B`` seconds of budget, ``S`` steps per epoch, ``s`` measured seconds per training step
and ``t_eval`` the final evaluation's estimated seconds, the run trains

    E = floor((B - t_spent - t_eval) / (S * s))      epochs (at least 1; refused below that),

where ``t_spent`` is what the run has used before its first epoch (loading, the measurement).

``s`` is measured on a throw-away copy of the model (built, compiled and stepped on the first
training batches, then dropped), so the run itself is exactly the run of ``--epochs E``: same
schedule, same random streams, same weights, and the manifest's command (``--epochs E``)
repeats it. The evaluation is estimated from the same step time: a forward pass costs about a
third of a training step per image, over every test split, and over the test-time
augmentation's views when the recipe has them.

**Re-planned once.** At the end of the first epoch the step time of that epoch (its first two
steps, which trace and compile, left out) re-plans ``E``. A schedule (warm-up, decay, weight
averaging) is a function of the total steps, so a different ``E`` cannot be switched to in
the middle of a run: when the re-plan differs, the run restarts from scratch with the new
``E`` (`Replan`), at the cost of one epoch, and only once. The plan, and whether it was
re-planned, is written to ``<out>/time_plan.json`` (read back by ``--resume``, which keeps the
planned epochs rather than planning again) and recorded in the manifest.
"""
from __future__ import annotations

import dataclasses
import json
import os
import time
from typing import Optional

import keras
import numpy as np

from tn_keras.training.backup_state import PLAN_FILE
from tn_keras.utils.files import atomic_write_json

#: Training steps timed on the throw-away model after the untimed ones that trace it.
TIMED_STEPS = 5
UNTIMED_STEPS = 2
#: A forward pass over an image, relative to a training step over it (forward + backward).
FORWARD_FRACTION = 1.0 / 3.0
@dataclasses.dataclass(frozen=True)
class TimePlan:
    """What the planner measured and decided (``time_plan.json``, the manifest's record)."""

    budget_seconds: float
    steps_per_epoch: int
    seconds_per_step: float
    evaluation_seconds: float
    spent_seconds: float
    epochs: int
    replanned_from: Optional[int] = None  # the first plan's epochs, when re-planned

    def as_dict(self) -> dict:
        return {k: (round(v, 4) if isinstance(v, float) else v)
                for k, v in dataclasses.asdict(self).items()}


def plan_epochs(budget, spent, steps_per_epoch, seconds_per_step, evaluation_seconds) -> int:
    """``E`` of the module docstring; ValueError when not even one epoch fits."""
    epoch_seconds = steps_per_epoch * seconds_per_step
    left = budget - spent - evaluation_seconds
    if left < epoch_seconds:
        raise ValueError(
            f"time_budget={budget:.0f} s is too short: one epoch takes about "
            f"{epoch_seconds:.0f} s and the final evaluation about {evaluation_seconds:.0f} s, "
            f"after {spent:.0f} s spent before training.")
    return int(left // epoch_seconds)


def evaluation_seconds(seconds_per_step, batch_size, test_images, tta_views) -> float:
    """The final evaluation's estimate: ``test_images`` forward passes, once plain and once
    per test-time-augmentation view (``tta_views`` 0 without TTA)."""
    per_image = FORWARD_FRACTION * seconds_per_step / batch_size
    return per_image * test_images * (1 + tta_views)


def measure_step_seconds(build, compile_model, x, y, batch_size, teacher=None) -> float:
    """Seconds per training step of a throw-away model: ``build()`` it, ``compile_model`` it,
    step it `UNTIMED_STEPS` times (tracing), then time `TIMED_STEPS` steps on the first
    training batch. With a ``teacher``, each step's targets are its probabilities for the
    batch, computed inside the timed step: the run pays for that forward pass every step.
    The trainer seeds every random stream after this, so the run that follows is the run of
    ``--epochs E``."""
    model = build()
    compile_model(model)
    n = min(len(x), batch_size)
    xb, yb = np.asarray(x[:n], "float32"), np.asarray(y[:n])

    def step():
        targets = yb if teacher is None else teacher(xb, training=False)
        model.train_on_batch(xb, targets)

    for _ in range(UNTIMED_STEPS):
        step()
    started = time.perf_counter()
    for _ in range(TIMED_STEPS):
        step()
    seconds = (time.perf_counter() - started) / TIMED_STEPS
    return seconds * batch_size / n  # a full batch, when the data had fewer images


def write_plan(out: str, plan: TimePlan):
    atomic_write_json(os.path.join(out, PLAN_FILE), plan.as_dict(), overwrite=True)


def read_plan(out: str) -> Optional[TimePlan]:
    """The plan a budgeted run wrote in ``out`` (None when it has none): ``--resume`` keeps
    its epochs."""
    path = os.path.join(out, PLAN_FILE)
    if not os.path.isfile(path):
        return None
    try:
        with open(path, encoding="utf-8") as f:
            return TimePlan(**json.load(f))
    except (ValueError, TypeError) as error:
        raise ValueError(f"{path} is not a time plan tn_keras wrote ({error}); delete it to "
                         "plan again, or resume with --epochs.") from None


class Replan(Exception):
    """Raised out of ``fit`` by `BudgetWatch`: restart with ``plan.epochs`` epochs."""

    def __init__(self, plan: TimePlan):
        super().__init__(f"re-planned to {plan.epochs} epochs")
        self.plan = plan


class BudgetWatch(keras.callbacks.Callback):
    """Re-plans once, at the end of the first epoch, from that epoch's step time (module
    docstring); raises `Replan` when the plan changes, else lets the run go on."""

    def __init__(self, plan: TimePlan, started: float, clock=time.perf_counter):
        super().__init__()
        self.plan, self.started, self.clock = plan, started, clock
        self._times = []

    def on_train_batch_end(self, batch, logs=None):
        if len(self._times) <= self.plan.steps_per_epoch:
            self._times.append(self.clock())

    def on_epoch_end(self, epoch, logs=None):
        if epoch != 0 or self.plan.replanned_from is not None:
            return
        timed = self._times[UNTIMED_STEPS - 1:]
        if len(timed) < 2:
            return  # too few steps to say more than the measurement did
        step = (timed[-1] - timed[0]) / (len(timed) - 1)
        evaluation = self.plan.evaluation_seconds * step / self.plan.seconds_per_step
        spent = self.clock() - self.started
        epochs = max(0, int((self.plan.budget_seconds - spent - evaluation)
                            // (self.plan.steps_per_epoch * step)))
        # Restart only when it pays: over the budget, or at least two more epochs fit
        # (a restart throws the first epoch away).
        if epochs >= 1 and (epochs < self.plan.epochs or epochs >= self.plan.epochs + 2):
            raise Replan(dataclasses.replace(
                self.plan, seconds_per_step=step, evaluation_seconds=evaluation,
                spent_seconds=spent, epochs=epochs, replanned_from=self.plan.epochs))
