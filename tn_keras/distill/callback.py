"""`MultiLevelDistillation`: distil a dataset with the model being trained, from inside fit."""
from __future__ import annotations

import os
from typing import Optional

import keras

from tn_keras.distill.algorithm import check_plan
from tn_keras.distill.algorithm import distill
from tn_keras.distill.algorithm import validate_data


class MultiLevelDistillation(keras.callbacks.Callback):
    """Distil ``data`` with ``self.model`` as the embedding network and export every level.

    At ``on_train_end`` the levels go to ``export_dir/level_<a>/``. With ``every_n_epochs=N``
    the callback also distils after every N-th epoch, into ``export_dir/epoch_<e>/level_<a>/``
    (so the progress of the distillation with training can be compared).

    Args:
        data: ``(x, y)`` arrays: raw 0..255 images and integer labels.
        levels, group_size: see `tn_keras.distill.distill`.
        export_dir: the export folder.
        every_n_epochs: also distil every N epochs (None: only at the end).
        overwrite: replace existing exports (else an existing ``export_dir`` is an error,
            raised at ``on_train_begin``, before the training's first epoch).
        **distill_kwargs: passed to `distill` (steps, learning_rate, per_class, seed, ...).

    After training, ``self.levels`` holds the final result (a list of `Level`).
    """

    def __init__(self, data, levels: int, group_size: int = 2, export_dir: Optional[str] = None,
                 every_n_epochs: Optional[int] = None, overwrite: bool = False,
                 **distill_kwargs):
        super().__init__()
        if export_dir is None:
            raise ValueError("MultiLevelDistillation needs export_dir.")
        if every_n_epochs is not None and every_n_epochs < 1:
            raise ValueError(f"every_n_epochs must be >= 1 or None; got {every_n_epochs}.")
        x, y = data
        # Fail at construction, not after hours of training.
        self.x, self.y = validate_data(x, y)
        check_plan(self.y, levels, group_size, distill_kwargs.get("per_class"))
        self.levels_requested = int(levels)
        self.group_size = int(group_size)
        self.export_dir = os.fspath(export_dir)
        self.every_n_epochs = every_n_epochs
        self.overwrite = overwrite
        self.distill_kwargs = distill_kwargs
        self.levels = None
        self.history = {}  # epoch -> levels (every_n_epochs)

    def on_train_begin(self, logs=None):
        if os.path.exists(self.export_dir) and not (
                self.overwrite or self.distill_kwargs.get("resume")):
            raise FileExistsError(f"{self.export_dir} already exists; pass overwrite=True.")

    def _run(self, export_dir):
        return distill(self.model, self.x, self.y, self.levels_requested,
                       group_size=self.group_size, export_dir=export_dir,
                       overwrite=self.overwrite or os.path.exists(export_dir)
                       and not self.distill_kwargs.get("resume"),
                       **self.distill_kwargs)

    def on_epoch_end(self, epoch, logs=None):
        if self.every_n_epochs and (epoch + 1) % self.every_n_epochs == 0:
            out = os.path.join(self.export_dir, f"epoch_{epoch + 1:04d}")
            self.history[epoch + 1] = self._run(out)

    def on_train_end(self, logs=None):
        self.levels = self._run(self.export_dir)
