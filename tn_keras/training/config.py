"""Every choice of a training run, and its defaults, in one place.

`tn_keras.training.train`, ``tn-keras train`` and the benchmarks that train build the same
`TrainConfig`; the CLI takes its choices (`STRATEGIES`) and defaults from here. The module
imports nothing beyond the standard library, so it is cheap to import anywhere.

Three views of a config matter outside this module:

- `RESUME_FIELDS`: what changes the trained weights. A run records them in its backup, and
  ``resume=True`` with other values is refused (`tn_keras.training.backup`).
- `command_line`: the reproducible ``tn-keras train ...`` command written to the manifest,
  rendered from the fields in `COMMAND_FIELDS`.
- everything else (where the data is read from, resuming or overwriting, how many test images
  are evaluated, verbosity) changes neither the weights nor the command.
"""
from __future__ import annotations

import dataclasses
import json
import math
import numbers
import os
import shlex
from typing import Any, Mapping, Optional, Union

from tn_keras.utils.durations import parse_duration  # noqa: F401  (re-exported)

#: Where a run puts its model and batches (`tn_keras.training.placement`): "default" is one
#: device under any backend; "mirrored" and "multiworker" are ``tf.distribute`` (TensorFlow
#: backend); "data_parallel" is ``keras.distribution.DataParallel`` (JAX backend).
STRATEGIES = ("default", "mirrored", "multiworker", "data_parallel")
DEFAULT_STRATEGY = "default"
DEFAULT_SEED = 0
#: ``Model.fit``'s ``verbose`` values.
VERBOSITIES = ("auto", 0, 1, 2)

#: The fields that change the trained weights; ``--resume`` must repeat them.
RESUME_FIELDS = ("recipe", "epochs", "batch_size", "learning_rate", "seed", "strategy",
                 "max_train_examples", "model_kwargs", "mixed_precision", "init_from",
                 "init_head", "freeze_body")
#: The fields of the manifest's command, in the order their flags are written. The first
#: three are always written (the recipe's values made explicit); the others only when they
#: differ from the default.
COMMAND_FIELDS = ("recipe", "epochs", "batch_size", "learning_rate", "seed", "model_kwargs",
                  "strategy", "mixed_precision", "max_train_examples", "out", "tag",
                  "init_from", "init_head", "freeze_body")
_ALWAYS_WRITTEN = ("epochs", "batch_size", "seed")


def _is_integer(value) -> bool:
    if isinstance(value, bool):
        return False
    try:
        return int(value) == value
    except (TypeError, ValueError):
        return False


def _check_count(name, value, minimum):
    if not _is_integer(value) or value < minimum:
        kind = "a positive integer" if minimum == 1 else "a non-negative integer"
        raise ValueError(f"{name} must be {kind}; received {value!r}.")
    return int(value)


def _check_json(model_kwargs):
    if not isinstance(model_kwargs, Mapping) or not all(isinstance(k, str)
                                                        for k in model_kwargs):
        raise ValueError(f"model_kwargs must be a dict of the builder's keyword arguments; "
                         f"received {model_kwargs!r}.")
    for key, value in model_kwargs.items():
        try:
            json.dumps(value)
        except (TypeError, ValueError):
            raise ValueError(f"model_kwargs[{key!r}] = {value!r} is not a JSON value; the "
                             "manifest records it and --resume compares it.") from None
    return dict(model_kwargs)


def _check_learning_rate(value):
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not (
            0 < value < math.inf):
        raise ValueError(f"learning_rate must be a positive number; received {value!r}.")
    return float(value)


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """How to train a zoo model; every field is also a keyword argument of `train`.

    Checked when made: a bad value is a ValueError naming the field. The defaults that
    depend on the call (the recipe's epochs and batch size) are filled in by `with_recipe`.

    Attributes:
        recipe: the name of a registered `TrainingRecipe` (``tn_keras.zoo.recipe_names()``)
            to train with instead of the architecture's own (None).
        epochs, batch_size: None takes the recipe's (`tn_keras.zoo.info(name).recipe`).
        learning_rate: the peak of the warm-up + cosine schedule; None takes the recipe's.
            Lower it for a variant that diverges at the recipe's rate.
        seed: seeds Python, NumPy, the backend, the shuffling and the augmentation; ops are
            deterministic for the run, so the same seed on the same machine and backend gives
            the same weights.
        model_kwargs: keyword arguments of the architecture's builder, e.g. ``{"width": 2.0}``
            (JSON values: the manifest records them).
        strategy: one of `STRATEGIES` (None means "default").
        mixed_precision: build the model under ``mixed_bfloat16`` (bfloat16 compute, float32
            variables).
        max_train_examples: train on the first N training images only (smoke tests).
        max_eval_examples: evaluate on the first N of each test split only (smoke tests).
        init_from: ``NAME[.TAG]`` of a checkpoint whose weights start the run (every layer
            but the classifier head).
        init_head: with ``init_from``: copy its classifier head too, to go on training the
            same task (a fine-tuning recipe such as ``mnist_low_order``) instead of learning
            a new head (transfer to another dataset).
        freeze_body: with ``init_from``: train the new classifier head only; the body's
            BatchNorm layers run in inference mode, with the checkpoint's statistics
            (`tn_keras.zoo.api.set_body_trainable`). The written checkpoint is unfrozen.
        time_budget: wall-clock seconds (or a duration such as ``"150m"``, ``"2h"``) for
            training and the final evaluation together: the epochs are planned to fit
            (`tn_keras.training.time_budget`), so ``epochs`` must be left None; the manifest
            records the planned epochs, and its command (``--epochs E``) repeats the run.
        data_dir: where the dataset files are (else ``TN_KERAS_DATA``, tfds, download).
        out: the checkpoint folder; None: ``$TN_KERAS_HOME/models/<name>/<tag>``.
        tag: the checkpoint's tag (None: ``local``); a shipped tag needs ``out``.
        resume: continue an interrupted run in ``out`` (same `RESUME_FIELDS`); on a finished
            run, return its checkpoint.
        overwrite: replace the previous run in ``out``.
        verbose: ``Model.fit``'s ``verbose``, one of `VERBOSITIES`.
    """

    recipe: Optional[str] = None
    epochs: Optional[int] = None
    batch_size: Optional[int] = None
    learning_rate: Optional[float] = None
    seed: int = DEFAULT_SEED
    model_kwargs: Optional[Mapping[str, Any]] = None
    strategy: Optional[str] = DEFAULT_STRATEGY
    mixed_precision: bool = False
    max_train_examples: Optional[int] = None
    max_eval_examples: Optional[int] = None
    init_from: Optional[str] = None
    init_head: bool = False
    freeze_body: bool = False
    time_budget: Optional[Union[float, str]] = None
    data_dir: Optional[str] = None
    out: Optional[str] = None
    tag: Optional[str] = None
    resume: bool = False
    overwrite: bool = False
    verbose: Union[str, int] = "auto"

    def __post_init__(self):
        checked = {"seed": _check_count("seed", self.seed, 0),
                   "model_kwargs": _check_json(self.model_kwargs or {}),
                   "strategy": self.strategy or DEFAULT_STRATEGY}
        for name in ("epochs", "batch_size", "max_train_examples", "max_eval_examples"):
            value = getattr(self, name)
            checked[name] = None if value is None else _check_count(name, value, 1)
        checked["learning_rate"] = _check_learning_rate(self.learning_rate)
        checked["time_budget"] = self._checked_budget()
        if checked["strategy"] not in STRATEGIES:
            raise ValueError(f"strategy must be one of {', '.join(map(repr, STRATEGIES))}; "
                             f"received {self.strategy!r}.")
        for name in ("mixed_precision", "init_head", "freeze_body", "resume", "overwrite"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be True or False; received "
                                 f"{getattr(self, name)!r}.")
        if self.freeze_body and self.init_from is None:
            raise ValueError("freeze_body=True needs init_from (CLI: --freeze-body needs "
                             "--init-from NAME[.TAG]): it trains a new head on a pretrained "
                             "body.")
        if self.init_head and self.init_from is None:
            raise ValueError("init_head=True needs init_from (CLI: --init-head needs "
                             "--init-from NAME[.TAG]): it copies that checkpoint's head.")
        if self.resume and self.overwrite:
            raise ValueError("resume=True and overwrite=True contradict each other (CLI: "
                             "--resume continues the run in --out, --overwrite deletes it); "
                             "pass one.")
        if self.verbose not in VERBOSITIES:
            raise ValueError(f"verbose must be one of {VERBOSITIES}; received "
                             f"{self.verbose!r}.")
        for name in ("recipe", "data_dir", "out", "tag", "init_from"):
            checked[name] = self._path_or_name(name)
        for name, value in checked.items():  # normalised, e.g. strategy None -> "default"
            object.__setattr__(self, name, value)

    def _checked_budget(self):
        if self.time_budget is None:
            return None
        seconds = parse_duration(self.time_budget)
        if self.epochs is not None:
            raise ValueError("Pass epochs or time_budget, not both: a time budget plans the "
                             f"epochs (received epochs={self.epochs!r} and "
                             f"time_budget={self.time_budget!r}).")
        return seconds

    def _path_or_name(self, name):
        value = getattr(self, name)
        if value is None:
            return None
        if name in ("data_dir", "out") and isinstance(value, os.PathLike):
            return os.fspath(value)
        if not isinstance(value, str) or not value:
            raise ValueError(f"{name} must be a non-empty string; received {value!r}.")
        return value

    def with_recipe(self, recipe) -> "TrainConfig":
        """A copy with ``epochs`` and ``batch_size`` left None taken from ``recipe`` (with a
        ``time_budget``, ``epochs`` stays None until the run plans it)."""
        planned = self.epochs is None and self.time_budget is not None
        return dataclasses.replace(
            self, epochs=self.epochs if self.epochs is not None or planned else recipe.epochs,
            batch_size=recipe.batch_size if self.batch_size is None else self.batch_size)


def command_line(name: str, config: TrainConfig) -> str:
    """The ``tn-keras train`` command that repeats the run of ``config`` (after `with_recipe`).

    One flag per field of `COMMAND_FIELDS` (``--batch-size`` for ``batch_size``): a boolean
    is the flag alone, ``model_kwargs`` is ``KEY=JSON`` words in key order, anything else the
    flag and its value; fields at their default are left out, except epochs, batch size and
    seed.
    """
    defaults = TrainConfig()
    words = ["tn-keras", "train", name]
    for field in COMMAND_FIELDS:
        value = getattr(config, field)
        if field in _ALWAYS_WRITTEN or value != getattr(defaults, field):
            flag = "--" + field.replace("_", "-")
            if isinstance(value, bool):
                words.append(flag)
            elif isinstance(value, Mapping):
                words += [flag] + [f"{k}={json.dumps(v)}" for k, v in sorted(value.items())]
            else:
                words += [flag, str(value)]
    return " ".join(shlex.quote(word) for word in words)
