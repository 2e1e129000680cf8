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
import numpy as np

from tn_keras.training.backup_state import BACKUP_DIR
from tn_keras.training.backup_state import LOG_FILE
from tn_keras.training.backup_state import MANIFEST_FILE
from tn_keras.training.backup_state import PLAN_FILE
from tn_keras.training.backup_state import RUN_FILE
from tn_keras.training.backup_state import STATE_FILE
from tn_keras.training.backup_state import entries as _entries
from tn_keras.training.backup_state import finished_manifest  # noqa: F401  (re-exported)
from tn_keras.training.backup_state import intact as _intact
from tn_keras.training.backup_state import intact_backup_note  # noqa: F401  (re-exported)
from tn_keras.training.backup_state import read_json as _read_json
from tn_keras.training.backup_state import usable_backup
from tn_keras.training.config import RESUME_FIELDS
from tn_keras.training.config import TrainConfig
from tn_keras.utils import memory_saves
from tn_keras.utils.faults import fault_point
from tn_keras.utils.files import atomic_write_json
from tn_keras.utils.files import sha256_file
from tn_keras.utils.write_errors import refused_writes


class CrashSafeBackup(keras.callbacks.Callback):
    """A training backup that is never half-written and falls back to the epoch before.

    Used like `keras.callbacks.BackupAndRestore` (``model.fit(..., callbacks=
    [CrashSafeBackup(dir)])``; an interrupted ``fit`` called again with it resumes after the
    last complete epoch), but built on the public `keras.callbacks.Callback` hooks only, so a
    Keras release cannot change it from under us. Differences: each backup is complete before
    it replaces the previous one; the last two complete backups are kept, each with its sha256,
    and a damaged newest one falls back to the one before (one line on stderr naming both);
    the backup is kept when ``fit`` ends (delete it with `finish_output` once the model is
    saved, so a crash between the two loses nothing); and an epoch whose loss or weights are
    not finite is not backed up: ``fit`` stops there (``diverged_epoch`` says which) and the
    last finite backup is the one to resume from.
    """

    def __init__(self, backup_dir):
        super().__init__()
        if not backup_dir:
            raise ValueError("CrashSafeBackup: backup_dir is empty; name the backup folder.")
        self.backup_dir = os.fspath(backup_dir)
        self._state_path = os.path.join(self.backup_dir, STATE_FILE)
        self._restored = None  # the state entry restored at the start of fit
        self._epochs_run = 0
        self._logs = {}
        self.diverged_epoch = None  # the first epoch whose loss or weights were not finite

    def on_train_begin(self, logs=None):
        self._epochs_run = 0
        self._restored = None
        self.diverged_epoch = None
        epochs = (self.params or {}).get("epochs")
        entry = usable_backup(self.backup_dir, warn=True, epochs=epochs)
        if entry is None:
            return
        if self.model.optimizer is not None and not self.model.optimizer.built:
            self.model.optimizer.build(self.model.trainable_variables)
        self.model.load_weights(os.path.join(self.backup_dir, entry["weights"]))
        _start_fit_at(self.model, int(entry["epoch"]))
        self._restored = entry

    def on_epoch_end(self, epoch, logs=None):
        self._epochs_run += 1
        self._logs = {k: float(v) for k, v in (logs or {}).items()
                      if isinstance(v, (int, float))}
        if not all(np.isfinite(v) for v in self._logs.values()) or non_finite_weight(self.model):
            # A diverged epoch (NaN / Inf loss or weights) is no backup: the last finite one
            # stays the one to resume from, and training stops here (the caller reports it).
            self.diverged_epoch = epoch + 1
            self.model.stop_training = True
            return
        self._save(epoch + 1)

    def _save(self, epoch):
        """Write the backup after ``epoch`` (1-based); the previous complete one is kept.

        A write the file system refuses (full disk, permission) removes the partial file and
        raises `WriteRefusedError` naming the backup and the epoch still intact.
        """
        name = f"epoch-{epoch:05d}.weights.h5"
        final = os.path.join(self.backup_dir, name)
        tmp = os.path.join(self.backup_dir, f".tmp-{name}")  # Keras wants .weights.h5
        with refused_writes(final, intact=lambda: intact_backup_note(self.backup_dir),
                            paths=(self.backup_dir,)):
            os.makedirs(self.backup_dir, exist_ok=True)
            try:
                # HDF5 writes into memory, then one plain write: a full disk is an OSError
                # here, never HDF5 failing in its C library (and crashing at exit).
                memory_saves.save_weights(self.model, tmp)
                fault_point("backup-write")  # the new weights are written, not yet renamed
                os.replace(tmp, final)
            except BaseException:
                with contextlib.suppress(FileNotFoundError):
                    os.remove(tmp)  # gives back the space; the previous backup is untouched
                raise
            state = {"epoch": epoch, "weights": name, "sha256": sha256_file(final),
                     "logs": self._logs}
            previous = self._fallback_for(name)
            if previous is not None:
                state["previous"] = previous
            atomic_write_json(self._state_path, state, overwrite=True)
        keep = {name} | ({previous["weights"]} if previous else set())
        for old in glob.glob(os.path.join(self.backup_dir, "epoch-*.weights.h5")):
            if os.path.basename(old) not in keep:
                os.remove(old)

    def _fallback_for(self, name):
        """The entry to keep as ``previous`` beside the new backup ``name``: the newest intact
        one recorded (checked by sha256, so a damaged file is never kept as the fallback)."""
        if not os.path.exists(self._state_path):
            return None
        state = _read_json(self._state_path, "training backup state")
        for entry in _entries(state):
            if entry["weights"] != name and _intact(self.backup_dir, entry):
                return entry
        return None

    def on_train_end(self, logs=None):
        # Resumed from a backup of the last epoch (killed after fit, before the checkpoint was
        # saved): no epoch ran, so give the History the last epoch's logs from the backup.
        history = getattr(self.model, "history", None)
        restored_logs = (self._restored or {}).get("logs") or {}
        if self._epochs_run == 0 and restored_logs and history is not None:
            for key, value in restored_logs.items():
                history.history.setdefault(key, []).append(value)
        fault_point("fit-finished")


def non_finite_weight(model):
    """The path of the first of ``model``'s weights holding a NaN or Inf, or None.

    A loss can be finite while the step that followed it was not: with one batch per epoch the
    logged loss is that of the weights before the update (``--learning-rate 1e308`` logged a
    loss of 3.28 and saved NaN weights)."""
    for weight in model.weights:
        values = keras.ops.convert_to_numpy(weight)
        if np.issubdtype(values.dtype, np.floating) and not np.isfinite(values).all():
            return weight.path
    return None


def _start_fit_at(model, epoch):
    """Make the running ``fit`` start after ``epoch``.

    Keras offers this publicly only as ``fit(initial_epoch=...)``, which a callback cannot
    pass; every Keras 3 backend's ``fit`` reads ``model._initial_epoch`` after
    ``on_train_begin`` (it is how `keras.callbacks.BackupAndRestore` resumes). It is the one
    private name used here: if a Keras release drops it, resuming fails with this message
    rather than silently training from epoch 1 (tests/test_training.py checks it too).
    """
    if not hasattr(model, "_initial_epoch"):
        raise RuntimeError(
            f"Keras {keras.__version__} has no Model._initial_epoch, through which a backup "
            "resumes fit; this tn_keras cannot resume with it (train without --resume, or "
            "use the Keras version tn_keras was tested with).")
    model._initial_epoch = epoch


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
    - Every run, with or without ``overwrite`` / ``resume``, refuses a folder holding anything
      training did not write (`_refuse_foreign`: ``--out .`` must not replace a user's
      README.md) and a folder inside the installed package's shipped data (`refuse_shipped`).

    Returns:
        The finished run's manifest when there is nothing to resume, else None.
    """
    settings = run_settings(name, config)
    if os.path.exists(out) and not os.path.isdir(out):
        raise NotADirectoryError(f"{out} is a file; the output of a training run is a folder.")
    manifest = finished_run(out, name) if config.resume else finished_manifest(out)
    if config.resume and manifest is not None:
        # Read only (the caller loads and verifies the checkpoint), but for what a kill after
        # the manifest left (a model card's .tmp-*), in a folder that is wholly training's.
        if _shipped_root(out) is None and not _foreign_entries(out, name):
            _sweep_temporaries(out)
        return manifest
    refuse_shipped(out)
    _refuse_foreign(out, name)  # before the sweep: a user's own .tmp-* files are not ours
    _sweep_temporaries(out)
    backup = os.path.join(out, BACKUP_DIR)
    if config.resume:
        _check_same_settings(out, settings)
        # The epoch the backup callback will restore (the one before a damaged newest one).
        entry = usable_backup(backup)
        _truncate_log(os.path.join(out, LOG_FILE), 0 if entry is None else entry["epoch"])
    else:
        if config.overwrite:
            remove_previous(out, name)
        _refuse_previous(out, name, backup)
        with contextlib.suppress(FileNotFoundError):  # a log with no backup: no epoch ended
            os.remove(os.path.join(out, LOG_FILE))
    record_settings(out, name, config)
    return None


def finished_run(out, name):
    """The manifest of the finished run of ``name`` in ``out``, every file verified, or None
    when ``out`` holds no manifest (nothing finished).

    What ``--resume`` checks before it says "already finished": a manifest that is no
    checkpoint's (``{}``), names another model, or whose ``.keras`` file is missing or
    corrupt is no finished run. Raises `artifacts.ManifestError` (a ValueError) saying which.
    """
    from tn_keras import artifacts

    path = os.path.join(out, MANIFEST_FILE)
    if not os.path.exists(path):
        return None
    try:
        manifest = artifacts.verify(path, artifacts.read(path, kind="checkpoint"))
        if manifest.name != name:
            raise artifacts.ManifestError(
                f"{path} is the manifest of {manifest.name!r}, not {name!r}")
    except artifacts.ManifestError as e:
        raise artifacts.ManifestError(
            f"--resume: {str(e).rstrip('.')}; the finished run in {out} cannot be verified. "
            "Train it again with overwrite=True (CLI: --overwrite), or choose another --out."
        ) from e
    return _read_json(path, "checkpoint manifest")


def record_settings(out, name, config):
    """``backup/run.json``: the `run_settings` that ``--resume`` must repeat (rewritten when a
    time budget has planned the epochs)."""
    backup = os.path.join(out, BACKUP_DIR)
    os.makedirs(backup, exist_ok=True)
    atomic_write_json(os.path.join(backup, RUN_FILE), run_settings(name, config), overwrite=True)


def discard_epochs(out, name, config):
    """Forget every finished epoch of the run in ``out`` (its backups and log rows), keeping
    the folder's settings: a time-budget run restarting from scratch with re-planned epochs."""
    shutil.rmtree(os.path.join(out, BACKUP_DIR), ignore_errors=True)
    with contextlib.suppress(FileNotFoundError):
        os.remove(os.path.join(out, LOG_FILE))
    record_settings(out, name, config)


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
    # A backup written before a field existed ran with that field's default.
    recorded = {**{k: v for k, v in run_settings("", TrainConfig()).items() if k != "name"},
                **recorded}
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
    # A row cut short (a full disk while the log was written) has fewer fields: dropped too.
    width = len(rows[0]) if rows else 0
    kept = rows[:1] + [r for r in rows[1:] if r and r[0].isdigit() and int(r[0]) < epochs
                       and len(r) == width]
    if len(kept) != len(rows):
        # A ".tmp-" name: a kill right here leaves what the next run's sweep removes.
        tmp = os.path.join(os.path.dirname(log_path), ".tmp-" + os.path.basename(log_path))
        with open(tmp, "w", newline="") as f:
            csv.writer(f).writerows(kept)
        os.replace(tmp, log_path)


def shipped_roots():
    """The resolved folders of the installed package's shipped checkpoints and datasets
    (``tn_keras.saved_models``, ``tn_keras.saved_datasets``) that exist."""
    import importlib.resources

    roots = []
    for package in ("tn_keras.saved_models", "tn_keras.saved_datasets"):
        try:
            root = os.path.realpath(str(importlib.resources.files(package)))
        except (ModuleNotFoundError, TypeError):  # a source tree without them
            continue
        if os.path.isdir(root):
            roots.append(root)
    return roots


def refuse_shipped(out):
    """Refuse ``out`` when it is, or is inside, the installed package's ``saved_models/`` or
    ``saved_datasets/``: a run there would replace what `zoo.load` returns as "shipped"."""
    root = _shipped_root(out)
    if root is not None:
        raise ValueError(
            f"{out} is inside the installed tn_keras package's {root}, which holds the "
            "shipped checkpoints and datasets; training never writes there. Train into "
            "another folder (--out) and copy a result there by hand to ship it.")


def _shipped_root(path):
    resolved = os.path.realpath(path)
    for root in shipped_roots():
        if resolved == root or resolved.startswith(root + os.sep):
            return root
    return None


def _refuse_foreign(out, name):
    """Refuse ``out`` when it holds anything that training did not write.

    A folder is training's when it holds a run's ``backup/run.json`` or a checkpoint manifest
    (kind "checkpoint"), or only an empty ``backup/`` (a run killed right after creating it).
    There, only the names `train` writes (and its ``.tmp-*`` / ``.worker-*`` temporaries) may
    appear. In any other folder every entry is someone else's, even one named like ours (a
    user's ``README.md`` is not a model card).
    """
    foreign = _foreign_entries(out, name)
    if foreign:
        more = f" and {len(foreign) - 5} more" if len(foreign) > 5 else ""
        raise FileExistsError(
            f"{out} holds files that training {name} did not write ({', '.join(foreign[:5])}"
            f"{more}); training writes only into a new or empty folder or one of its own runs, "
            "with or without overwrite. Choose another output folder (--out) or move them.")


def _foreign_entries(out, name):
    """The sorted entries of ``out`` that training did not write (see `_refuse_foreign`)."""
    if not os.path.isdir(out):
        return []
    entries = sorted(os.listdir(out))
    if not _written_by_training(out):
        return entries
    owned = _owned_entries(name)
    return [e for e in entries if e not in owned and not e.startswith((".tmp-", ".worker-"))]


def _written_by_training(out):
    run_file = os.path.join(out, BACKUP_DIR, RUN_FILE)
    if os.path.isfile(run_file):
        return True
    manifest = os.path.join(out, MANIFEST_FILE)
    if os.path.isfile(manifest):
        try:
            return _read_json(manifest, "checkpoint manifest").get("kind") == "checkpoint"
        except ValueError:
            return False
    backup = os.path.join(out, BACKUP_DIR)
    return os.path.isdir(backup) and all(e.startswith(".tmp-") for e in os.listdir(backup))


def _owned_entries(name):
    from tn_keras.zoo.cards import CARD_NAME  # the model card written beside the checkpoint

    return {f"{name}.keras", MANIFEST_FILE, BACKUP_DIR, LOG_FILE, CARD_NAME, PLAN_FILE}


def remove_previous(out, name):
    """Remove the previous run in ``out`` as a whole: one rename, then delete.

    Refused when ``out`` holds anything that ``train`` does not write (``--out .`` must not
    delete a working directory).
    """
    if not os.path.isdir(out):
        return
    _refuse_foreign(out, name)
    # The folder itself, not a symbolic link to it: renaming a link would leave the folder.
    resolved = os.path.realpath(out)
    cwd = os.path.realpath(os.getcwd())
    if cwd == resolved or cwd.startswith(resolved + os.sep):
        raise ValueError(f"overwrite=True would move away {out}, the current folder (or one "
                         "above it); run from another folder.")
    trash = _trash_name(resolved)
    os.replace(resolved, trash)  # atomic: the previous result is gone as a whole, or whole
    os.makedirs(resolved)  # at once: a symbolic link ``out`` keeps pointing at a folder
    shutil.rmtree(trash, ignore_errors=True)


def _trash_name(out):
    out = os.path.abspath(out).rstrip(os.sep)
    return os.path.join(os.path.dirname(out), f".{os.path.basename(out)}.old-{os.getpid()}")


def _sweep_temporaries(out):
    """Delete what killed runs left: ``.tmp-*`` files in ``out`` and old trash beside it."""
    out = os.path.realpath(out)
    parent, base = os.path.split(out)
    pattern = os.path.join(parent, f".{glob.escape(base)}.old-*")
    for trash in glob.glob(pattern):
        # Exactly `_trash_name`'s ".<base>.old-<pid>": not the trash of "<base>.old-x".
        if os.path.basename(trash)[len(base) + 6:].isdigit():
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
