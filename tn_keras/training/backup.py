"""Crash-safe training runs: a backup that survives a kill, and the rules of an output folder.

A training folder ``<out>/`` holds ``<name>.keras`` + ``manifest.json`` (the finished run; the
manifest is written last, so its presence means "finished"), ``training_log.csv`` and, while
the run is unfinished, ``backup/``:

- ``backup/run.json``: the arguments of the run (epochs, batch size, seed, ...), so that
  ``--resume`` with other arguments is refused before anything is touched;
- ``backup/epoch-<n>.weights.h5``: model and optimizer state after epoch ``n``;
- ``backup/state.json``: which weights file is the latest complete one, with its sha256.

`CrashSafeBackup` writes each epoch's weights under a temporary name, renames it, and only then
points ``state.json`` at it (itself written to a temporary name and renamed); the previous
weights file is deleted after that. A kill at any moment therefore leaves ``state.json``
naming a complete, checksummed file: the run resumes from its last complete epoch. The backup
is deleted only once the checkpoint and its manifest are written (`finish_output`).

`prepare_output` applies the folder's rules before a run starts (``train`` holds the folder's
lock, `tn_keras.utils.locks`, for the whole run).
"""
import contextlib
import csv
import glob
import json
import os
import shutil

import keras

from tn_keras.training.config import RESUME_FIELDS
from tn_keras.utils.faults import fault_point
from tn_keras.utils.files import atomic_write_json
from tn_keras.utils.files import sha256_file

BACKUP_DIR = "backup"
RUN_FILE = "run.json"
STATE_FILE = "state.json"
LOG_FILE = "training_log.csv"
MANIFEST_FILE = "manifest.json"


def _read_json(path, what):
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise ValueError(f"{path}: cannot read the {what} ({e}).") from e
    if not isinstance(data, dict):
        raise ValueError(f"{path}: the {what} is a JSON {type(data).__name__}, expected an "
                         "object.")
    return data


class CrashSafeBackup(keras.callbacks.BackupAndRestore):
    """`keras.callbacks.BackupAndRestore` whose backup is never half-written.

    Same use as the Keras callback (``model.fit(..., callbacks=[CrashSafeBackup(dir)])``; an
    interrupted ``fit`` called again with it resumes after the last complete epoch), with
    three differences: each backup is complete before it replaces the previous one; it is
    verified by sha256 before it is restored; and it is kept when ``fit`` ends (delete it with
    `finish_output` once the model is saved, so a crash between the two loses nothing).
    """

    def __init__(self, backup_dir):
        super().__init__(backup_dir, save_freq="epoch", delete_checkpoint=False)
        self._state_path = os.path.join(backup_dir, STATE_FILE)
        self._restored_logs = None
        self._epochs_run = 0
        self._logs = {}

    def on_train_begin(self, logs=None):
        self._epochs_run = 0
        self._load_model()

    def _load_model(self):
        if not os.path.exists(self._state_path):
            return
        state = _read_json(self._state_path, "training backup state")
        weights = os.path.join(self.backup_dir, os.path.basename(str(state.get("weights"))))
        if not os.path.isfile(weights) or sha256_file(weights) != state.get("sha256"):
            raise ValueError(
                f"{self._state_path} names {weights}, which is missing or does not match its "
                "sha256: the backup was changed outside tn_keras. Delete the backup folder and "
                "train again (--overwrite).")
        if self.model.optimizer is not None and not self.model.optimizer.built:
            self.model.optimizer.build(self.model.trainable_variables)
        self.model.load_weights(weights)
        self.model._initial_epoch = int(state["epoch"])
        self._restored_logs = state.get("logs") or {}

    def on_epoch_end(self, epoch, logs=None):
        self._epochs_run += 1
        self._logs = {k: float(v) for k, v in (logs or {}).items()
                      if isinstance(v, (int, float))}
        super().on_epoch_end(epoch, logs)

    def _save_model(self):
        os.makedirs(self.backup_dir, exist_ok=True)
        name = f"epoch-{self._current_epoch:05d}.weights.h5"
        final = os.path.join(self.backup_dir, name)
        tmp = os.path.join(self.backup_dir, f".tmp-{name}")  # Keras wants .weights.h5
        self.model.save_weights(tmp, overwrite=True)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        fault_point("backup-write")  # the new weights are written, not yet renamed
        os.replace(tmp, final)
        state = {"epoch": self._current_epoch, "weights": name, "sha256": sha256_file(final),
                 "logs": self._logs}
        atomic_write_json(self._state_path, state, overwrite=True)
        for old in glob.glob(os.path.join(self.backup_dir, "epoch-*.weights.h5")):
            if os.path.basename(old) != name:
                os.remove(old)

    def on_train_end(self, logs=None):
        # Resumed from a backup of the last epoch (killed after fit, before the checkpoint was
        # saved): no epoch ran, so give the History the last epoch's logs from the backup.
        history = getattr(self.model, "history", None)
        if self._epochs_run == 0 and self._restored_logs and history is not None:
            for key, value in self._restored_logs.items():
                history.history.setdefault(key, []).append(value)
        fault_point("fit-finished")


def finished_manifest(out):
    """The manifest of the finished run in ``out``, or None."""
    path = os.path.join(out, MANIFEST_FILE)
    return _read_json(path, "checkpoint manifest") if os.path.exists(path) else None


def _backup_epoch(out):
    state = os.path.join(out, BACKUP_DIR, STATE_FILE)
    return int(_read_json(state, "training backup state").get("epoch", 0)) if os.path.exists(
        state) else 0


def prepare_output(out, name, config):
    """Apply the rules of a training folder before anything is loaded or written.

    ``config`` is the run's `TrainConfig` (after `TrainConfig.with_recipe`; it never has both
    ``resume`` and ``overwrite``):

    - ``resume`` on a finished run: returns its manifest (nothing is touched; the caller
      loads the checkpoint). ``resume`` with other `run_settings` than the backup's is refused.
    - A fresh run refuses a folder with a finished run or an interrupted run's backup unless
      ``overwrite``, which first removes the previous result as a whole (`remove_previous`).

    Returns:
        The finished run's manifest when there is nothing to resume, else None.
    """
    settings = run_settings(name, config)
    if os.path.exists(out) and not os.path.isdir(out):
        raise NotADirectoryError(f"{out} is a file; the output of a training run is a folder.")
    _sweep_temporaries(out)
    backup = os.path.join(out, BACKUP_DIR)
    manifest = finished_manifest(out)
    if config.resume:
        if manifest is not None:
            return manifest
        _check_same_settings(out, settings)
        _truncate_log(os.path.join(out, LOG_FILE), _backup_epoch(out))
    else:
        if config.overwrite:
            remove_previous(out, name)
        _refuse_previous(out, name, backup)
        with contextlib.suppress(FileNotFoundError):  # a log with no backup: no epoch ended
            os.remove(os.path.join(out, LOG_FILE))
    os.makedirs(backup, exist_ok=True)
    atomic_write_json(os.path.join(backup, RUN_FILE), settings, overwrite=True)
    return None


def _refuse_previous(out, name, backup):
    for path in (os.path.join(out, f"{name}.keras"), os.path.join(out, MANIFEST_FILE)):
        if os.path.exists(path):
            raise FileExistsError(f"{path} already exists; pass overwrite=True (CLI: "
                                  "--overwrite) to replace it.")
    epoch = _backup_epoch(out)
    if epoch:
        raise FileExistsError(
            f"{out} holds an interrupted run (backup after epoch {epoch}); pass resume=True "
            "(CLI: --resume) to continue it, or overwrite=True (--overwrite) to discard it.")
    shutil.rmtree(backup, ignore_errors=True)  # run.json only: no epoch finished


def _check_same_settings(out, settings):
    path = os.path.join(out, BACKUP_DIR, RUN_FILE)
    if not os.path.exists(path):
        return  # nothing to resume: the run starts from epoch 1
    recorded = _read_json(path, "run arguments of the backup")
    wrong = [f"{k}={settings.get(k)!r} (the backup has {recorded.get(k)!r})"
             for k in sorted(set(settings) | set(recorded)) if settings.get(k) != recorded.get(k)]
    if wrong:
        raise ValueError(f"Cannot resume the run in {out} with other arguments: "
                         f"{'; '.join(wrong)}. Resume with the backup's arguments, or start "
                         "over with overwrite=True (CLI: --overwrite).")


def _truncate_log(log_path, epochs):
    """Keep the CSV log's rows of the backup's ``epochs`` (a killed epoch may have logged)."""
    if not os.path.exists(log_path):
        return
    with open(log_path, newline="") as f:
        rows = list(csv.reader(f))
    kept = rows[:1] + [r for r in rows[1:] if r and r[0].isdigit() and int(r[0]) < epochs]
    if len(kept) != len(rows):
        tmp = log_path + ".tmp"
        with open(tmp, "w", newline="") as f:
            csv.writer(f).writerows(kept)
        os.replace(tmp, log_path)


def _owned_entries(name):
    from tn_keras.zoo.cards import CARD_NAME  # the model card written beside the checkpoint

    return {f"{name}.keras", MANIFEST_FILE, BACKUP_DIR, LOG_FILE, CARD_NAME}


def remove_previous(out, name):
    """Remove the previous run in ``out`` as a whole: one rename, then delete.

    Refused when ``out`` holds anything that ``train`` does not write (``--out .`` must not
    delete a working directory).
    """
    if not os.path.isdir(out):
        return
    foreign = sorted(e for e in os.listdir(out)
                     if e not in _owned_entries(name) and not e.startswith(".tmp-"))
    if foreign:
        raise ValueError(f"overwrite=True would delete {out}, which holds files training "
                         f"does not write ({', '.join(foreign[:5])}); choose another output "
                         "folder or remove them.")
    trash = _trash_name(out)
    os.replace(out, trash)  # atomic: the previous result is gone as a whole, or still whole
    shutil.rmtree(trash, ignore_errors=True)


def _trash_name(out):
    out = os.path.abspath(out).rstrip(os.sep)
    return os.path.join(os.path.dirname(out), f".{os.path.basename(out)}.old-{os.getpid()}")


def _sweep_temporaries(out):
    """Delete what killed runs left: ``.tmp-*`` files in ``out`` and old trash beside it."""
    out = os.path.abspath(out).rstrip(os.sep)
    pattern = os.path.join(os.path.dirname(out), f".{glob.escape(os.path.basename(out))}.old-*")
    for trash in glob.glob(pattern):
        shutil.rmtree(trash, ignore_errors=True)
    for folder in (out, os.path.join(out, BACKUP_DIR)):
        for tmp in glob.glob(os.path.join(folder, ".tmp-*")):
            with contextlib.suppress(OSError):
                shutil.rmtree(tmp) if os.path.isdir(tmp) else os.remove(tmp)


def finish_output(out):
    """The checkpoint and manifest are written: delete the backup (the run is finished)."""
    fault_point("before-backup-delete")
    shutil.rmtree(os.path.join(out, BACKUP_DIR), ignore_errors=True)


def run_settings(name, config):
    """What ``--resume`` must repeat: ``name`` and the `RESUME_FIELDS` of the run's
    `TrainConfig` (after `TrainConfig.with_recipe`), as recorded in ``backup/run.json``."""
    settings = {"name": name}
    settings.update({field: getattr(config, field) for field in RESUME_FIELDS})
    # As JSON gives it back, so that a fresh run compares equal to a recorded one.
    settings["model_kwargs"] = json.loads(json.dumps(settings["model_kwargs"], sort_keys=True))
    return settings
