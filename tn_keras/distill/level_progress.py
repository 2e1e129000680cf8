"""A level's matching saved part-way, so that a level of hours resumes where it stopped.

``method="dm"`` runs thousands of iterations per level (DM's 20,000; about 3 s each for
CIFAR-10 on 2 CPU cores), longer than one sitting. Every `SAVE_EVERY` iterations, and when the
run's time budget runs out, `LevelProgress.save` writes everything the next iteration depends
on to ``<export>/.progress-level_<a>.npz`` (atomically): the synthetic pixels, the optimiser's
variables (SGD's momentum and step count), the random generator's state (the next real batch,
network and augmentation draws), the losses so far, and the settings the level is made with.
`LevelProgress.restore` puts them back, so a level resumed any number of times ends with the
pixels of an uninterrupted run, bit for bit on the same machine and backend. A file made with
other settings is refused, not mixed in; the file is removed once the level is written.
"""
from __future__ import annotations

import json
import os
from typing import Optional

import numpy as np
from keras import ops

from tn_keras.utils.files import atomic_path

#: Iterations between two saves (the work a kill can cost).
SAVE_EVERY = 250


def progress_path(export_dir: str, level: int) -> str:
    return os.path.join(export_dir, f".progress-level_{level}.npz")


class LevelProgress:
    """The progress file of one level: ``record`` (JSON-able) says what the level is made
    with; ``deadline`` (``time.time()`` seconds, or None) is when the run must pause."""

    def __init__(self, path: str, record: dict, deadline: Optional[float] = None):
        self.path = path
        self.record = json.loads(json.dumps(record, sort_keys=True))
        self.deadline = deadline

    def save(self, matcher, rng, losses, iteration: int):
        optimiser = [np.asarray(ops.convert_to_numpy(v)) for v in matcher.optimizer.variables]
        arrays = {f"optimizer_{i}": v for i, v in enumerate(optimiser)}
        with atomic_path(self.path, overwrite=True) as tmp:
            with open(tmp, "wb") as f:
                np.savez(f, pixels=np.asarray(ops.convert_to_numpy(matcher.pixels)),
                         losses=np.asarray(losses, np.float64),
                         iteration=np.int64(iteration),
                         rng=np.array(json.dumps(rng.bit_generator.state)),
                         record=np.array(json.dumps(self.record, sort_keys=True)), **arrays)

    def restore(self, matcher, rng) -> tuple:
        """``(iteration, losses)`` of a saved state put back into ``matcher`` and ``rng``;
        ``(0, [])`` when there is none."""
        if not os.path.isfile(self.path):
            return 0, []
        try:
            with np.load(self.path) as data:
                saved = {k: data[k] for k in data.files}
            theirs = json.loads(str(saved["record"]))
        except (OSError, ValueError, KeyError) as error:
            raise ValueError(f"{self.path} is not a level's saved progress ({error}); delete "
                             "it to make the level from its start.") from None
        if theirs != self.record:
            raise ValueError(f"{self.path} was saved by a run with other settings ({theirs}) "
                             f"than this one ({self.record}); delete it, or resume with the "
                             "settings it was made with.")
        matcher.pixels.assign(saved["pixels"])
        matcher.optimizer.build(matcher.trainable_variables)
        for i, variable in enumerate(matcher.optimizer.variables):
            variable.assign(saved[f"optimizer_{i}"])
        rng.bit_generator.state = json.loads(str(saved["rng"]))
        return int(saved["iteration"]), [float(v) for v in saved["losses"]]

    def remove(self):
        if os.path.exists(self.path):
            os.remove(self.path)
