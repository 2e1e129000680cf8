"""The state of a training folder's backup, read without Keras: which backup is intact.

`tn_keras.training.backup.CrashSafeBackup` writes ``backup/state.json`` (the latest complete
weights file and its sha256, and under ``previous`` the one before it); this module reads it
back the way a resumed run does, checking each file's sha256, and writes nothing. It imports
neither Keras nor TensorFlow, so ``tn-keras status`` can use it in a fraction of a second.
"""
import json
import os
import sys

from tn_keras.utils.files import sha256_file

BACKUP_DIR = "backup"
RUN_FILE = "run.json"
STATE_FILE = "state.json"
LOG_FILE = "training_log.csv"
MANIFEST_FILE = "manifest.json"
#: A time-budgeted run's plan (`tn_keras.training.time_budget`), read back by ``--resume``.
PLAN_FILE = "time_plan.json"


def read_json(path, what):
    """The JSON object in ``path``; a ValueError naming the file (and ``what`` it is) when it
    cannot be read, is not JSON or is not an object."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise ValueError(f"{path}: cannot read the {what} ({e}).") from e
    if not isinstance(data, dict):
        raise ValueError(f"{path}: the {what} is a JSON {type(data).__name__}, expected an "
                         "object.")
    return data


def entries(state):
    """The backups ``state`` records, newest first: ``[{epoch, weights, sha256, logs}]``."""
    recorded = [state]
    if isinstance(state.get("previous"), dict):
        recorded.append(state["previous"])
    return [{"epoch": e.get("epoch"), "weights": os.path.basename(str(e.get("weights"))),
             "sha256": e.get("sha256"), "logs": e.get("logs") or {}} for e in recorded]


def intact(backup_dir, entry):
    """Whether the weights file of ``entry`` exists and has its recorded sha256."""
    path = os.path.join(backup_dir, entry["weights"])
    return (isinstance(entry["epoch"], int) and not isinstance(entry["epoch"], bool)
            and os.path.isfile(path) and sha256_file(path) == entry["sha256"])


def usable_backup(backup_dir, warn=False, epochs=None):
    """The newest intact backup in ``backup_dir``, as ``{epoch, weights, sha256, logs}``.

    None when nothing is backed up yet (no ``state.json``). When the newest backup is damaged
    (missing, truncated, another sha256) the one before it is used. With ``warn`` one line on
    stderr says which: a fallback names both backups; otherwise the line says where the run
    resumes (epoch ``n + 1`` of ``epochs``, from which file). Read-only.

    Raises:
        ValueError: no recorded backup is intact (the message names them and ``state.json``).
    """
    state_path = os.path.join(backup_dir, STATE_FILE)
    if not os.path.exists(state_path):
        return None
    recorded = entries(read_json(state_path, "training backup state"))
    for entry in recorded:
        if intact(backup_dir, entry):
            if warn:
                print(_resume_line(backup_dir, entry, recorded[0], epochs), file=sys.stderr,
                      flush=True)
            return entry
    names = " and ".join(os.path.join(backup_dir, e["weights"]) for e in recorded)
    raise ValueError(
        f"{state_path} names {names}: none is complete (missing, or not matching its sha256 "
        "in state.json), so there is no backup to resume from. Delete the backup folder and "
        "train again (--overwrite).")


def _resume_line(backup_dir, entry, newest, epochs):
    """The one line `usable_backup` prints: where the run resumes, from which backup."""
    path = os.path.join(backup_dir, entry["weights"])
    if entry is not newest:
        return (f"tn_keras: the backup of epoch {newest['epoch']} "
                f"({os.path.join(backup_dir, newest['weights'])}) is missing or damaged; "
                f"resuming from the one before, epoch {entry['epoch']} ({path})")
    if epochs is not None and entry["epoch"] >= epochs:
        return (f"tn_keras: resuming from the backup of epoch {entry['epoch']} ({path}): all "
                f"{epochs} epochs are done, nothing is left to train")
    of = f" of {epochs}" if epochs is not None else ""
    return (f"tn_keras: resuming at epoch {entry['epoch'] + 1}{of} from the backup of epoch "
            f"{entry['epoch']} ({path})")


def intact_backup_note(backup_dir):
    """What a failed write left to resume from, for its error message (read-only)."""
    try:
        entry = usable_backup(backup_dir)
    except (OSError, ValueError):
        entry = None
    if entry is None:
        return "no epoch had been backed up yet"
    return f"the backup of epoch {entry['epoch']} is intact; --resume continues from it"


def finished_manifest(out):
    """The manifest of the finished run in ``out``, or None."""
    path = os.path.join(out, MANIFEST_FILE)
    return read_json(path, "checkpoint manifest") if os.path.exists(path) else None
