"""`MultiLevelDistillation`: distil a dataset with the model being trained, from inside fit."""
from __future__ import annotations

import dataclasses
import os
from typing import Optional

import keras

from tn_keras.distill.algorithm import configure
from tn_keras.distill.algorithm import distill
from tn_keras.distill.checks import check_plan
from tn_keras.distill.checks import validate_data
from tn_keras.distill.config import DistillConfig
from tn_keras.distill.config import LevelExportConfig
from tn_keras.utils.options import deprecated_aliases as _deprecated_aliases


class MultiLevelDistillation(keras.callbacks.Callback):
    """Distil ``data`` with ``self.model`` as the embedding network and export every level.

    At ``on_train_end`` the levels go to ``export.directory/level_<a>/``. With
    ``every_n_epochs=N`` the callback also distils after every N-th epoch, into
    ``export.directory/epoch_<e>/level_<a>/`` (so the progress of the distillation with
    training can be compared). The model being trained is not modified: the distillation
    uses a frozen copy of its current weights.

        >>> MultiLevelDistillation((x, y), settings=DistillConfig(levels=3),
        ...                        export=LevelExportConfig(directory="out"))

    Args:
        data: ``(x, y)`` arrays: raw 0..255 images and integer labels.
        levels: shorthand for ``settings.levels``.
        settings: the algorithm (`DistillConfig`).
        export: the export (`LevelExportConfig`); ``directory`` is required.
        every_n_epochs: also distil every N epochs (None: only at the end).
        **options: any `DistillConfig` / `LevelExportConfig` field by name (and the older
            ``export_dir=``), as in `tn_keras.distill.distill`.

    An existing export directory is an error (unless ``overwrite`` or ``resume``), raised at
    ``on_train_begin``, before the training's first epoch. After training, ``self.levels``
    holds the final result (a list of `Level`).
    """

    def __init__(self, data, levels: Optional[int] = None,
                 settings: Optional[DistillConfig] = None,
                 export: Optional[LevelExportConfig] = None, every_n_epochs: Optional[int] = None,
                 **options):
        super().__init__()
        self.settings, self.export = configure(levels, settings, export, **options)
        if self.export.directory is None:
            raise ValueError("MultiLevelDistillation needs an export directory "
                             "(export=LevelExportConfig(directory=...)).")
        if every_n_epochs is not None and every_n_epochs < 1:
            raise ValueError(f"every_n_epochs must be >= 1 or None; got {every_n_epochs}.")
        x, y = data
        # Fail at construction, not after hours of training.
        self.x, self.y = validate_data(x, y)
        check_plan(self.y, self.settings.levels, self.settings.group_size,
                   self.settings.per_class)
        self.export_dir = os.fspath(self.export.directory)
        self.every_n_epochs = every_n_epochs
        self.levels = None
        self.history = {}  # epoch -> levels (every_n_epochs)

    def on_train_begin(self, logs=None):
        if os.path.exists(self.export_dir) and not (self.export.overwrite or self.export.resume):
            raise FileExistsError(f"{self.export_dir} already exists; pass overwrite=True.")

    def _run(self, export_dir):
        # Overwrite this run's own earlier export (e.g. of a previous epoch) unless resuming.
        overwrite = self.export.overwrite or (os.path.exists(export_dir)
                                              and not self.export.resume)
        export = dataclasses.replace(self.export, directory=export_dir, overwrite=overwrite)
        return distill(self.model, self.x, self.y, settings=self.settings, export=export)

    def on_epoch_end(self, epoch, logs=None):
        if self.every_n_epochs and (epoch + 1) % self.every_n_epochs == 0:
            out = os.path.join(self.export_dir, f"epoch_{epoch + 1:04d}")
            self.history[epoch + 1] = self._run(out)

    def on_train_end(self, logs=None):
        self.levels = self._run(self.export_dir)


# The old names (renamed so that every config object ends in Config): importable from here as
# before, with a DeprecationWarning; each is the new class itself.
__getattr__ = _deprecated_aliases(__name__, {
    "DistillSettings": ("DistillConfig", DistillConfig),
    "ExportOptions": ("LevelExportConfig", LevelExportConfig),
})
