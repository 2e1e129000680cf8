"""What an output folder holds, found without touching it: ``tn-keras status``.

`describe` reads a training run's folder (``tn-keras train --out``), a distillation's export
folder (``tn-keras distill --out``) or an export (``tn-keras export --out``) and says whether it
is being written (a live lock holder), can be resumed (and from which backup), is finished and
verifies, or is damaged (and what is wrong). It is strictly read-only: it takes no lock (a live
holder is seen in ``/proc/locks``, `tn_keras.utils.locks.inspect`), writes nothing, and runs no
recovery (what a killed run left is reported, and left for the next run to resolve). Every
sha256 is checked as the writer's own reader checks it (`tn_keras.training.backup_state`,
`tn_keras.artifacts.verify`). It imports neither Keras nor TensorFlow.
"""
import dataclasses
import errno
import glob
import json
import os
import re

from tn_keras import artifacts
from tn_keras.training import backup_state
from tn_keras.utils import locks

_LEVEL = re.compile(r"^level_(\d+)$")
_EXPORT_STAGING = ".tmp-export-"  # `tn_keras.export.staging.PREFIX` (that module loads Keras)


@dataclasses.dataclass
class Status:
    """What `describe` found.

    ``kind``: "training run", "distillation", "export" or "empty folder"; ``state``: one word
    or two ("running", "resumable", "not started", "finished", "unfinished", "complete",
    "damaged", "locked elsewhere", "empty"); ``summary``: the rest of the first line;
    ``details``: further lines (a distillation's levels); ``notes``: what a killed run left.
    """

    path: str
    kind: str
    state: str
    summary: str
    details: list = dataclasses.field(default_factory=list)
    notes: list = dataclasses.field(default_factory=list)
    lock: dict = dataclasses.field(default_factory=dict)

    def lines(self):
        """The text ``tn-keras status`` prints: one line, then the details indented."""
        head = f"{self.path}: {self.kind}: {self.state}"
        head += f": {self.summary}" if self.summary else ""
        return [head] + [f"  {line}" for line in self.details + self.notes]

    def to_dict(self):
        return dataclasses.asdict(self)


def describe(path):
    """The `Status` of the output at ``path`` (a folder, or an export file).

    Raises:
        FileNotFoundError: nothing is at ``path``.
        ValueError: ``path`` is not an output of tn-keras (the message names what it holds).
    """
    path = os.fspath(path)
    if not os.path.lexists(path):
        raise FileNotFoundError(errno.ENOENT, "no such file or folder", path)
    if not os.path.exists(path):
        raise ValueError(f"{path} is a symbolic link to {os.readlink(path)!r}, which does not "
                         "exist.")
    lock_state, owner, lock_file = locks.inspect(path)
    lock = {"state": lock_state, "file": lock_file, "owner": owner}
    if os.path.isfile(path):
        status = _export(path, os.path.abspath(path) + ".json", lock)
    elif _is_training(path):
        status = _training(path, lock)
    elif _is_export_folder(path):
        status = _export(path, os.path.join(path, artifacts.MANIFEST_NAME), lock)
    elif _is_distillation(path):
        status = _distillation(path, lock)
    elif not os.listdir(path):
        status = Status(path, "empty folder", "empty", "nothing written yet", lock=lock)
    else:
        entries = sorted(os.listdir(path))
        more = f" and {len(entries) - 5} more" if len(entries) > 5 else ""
        raise ValueError(f"{path} is not a training, distillation or export output of "
                         f"tn-keras (it holds {', '.join(entries[:5])}{more}).")
    _add_lock(status, lock)
    return status


def _add_lock(status, lock):
    """A live or foreign lock holder decides the state; a dead run's lock is a note."""
    owner = lock["owner"]
    who = (f"pid {owner.get('pid', '?')} on host {owner.get('host', '?')}, started "
           f"{owner.get('started', '?')}: {owner.get('command', '?')}")
    if lock["state"] == "running":
        if status.kind == "export":  # what is in place while the new export is being made
            so_far = f"; in place now: {status.state}" + (
                f": {status.summary}" if status.summary else "")
        else:
            so_far = f"; {status.summary}" if status.summary else ""
        status.state, status.summary = "running", who + so_far
    elif lock["state"] == "another host":
        status.state = "locked elsewhere"
        status.summary = f"by a run on another host ({who}); its pid cannot be checked from here"
    elif lock["state"] == "left":
        status.notes.append(f"{lock['file']}: a lock left by a run that is no longer running "
                            f"({who}); the next run takes it over")


# ----------------------------------------------------------------------------- training runs
def _is_training(path):
    manifest = os.path.join(path, backup_state.MANIFEST_FILE)
    return os.path.isdir(os.path.join(path, backup_state.BACKUP_DIR)) or (
        os.path.isfile(manifest) and _kind(manifest) == "checkpoint")


def _kind(manifest_path):
    try:
        with open(manifest_path, encoding="utf-8") as f:
            kind = json.load(f).get("kind")
    except (OSError, ValueError, AttributeError):
        return None
    return kind


def _training(path, lock):
    status = Status(path, "training run", "", "", lock=lock)
    leftovers = sorted(glob.glob(os.path.join(path, ".tmp-*"))
                       + glob.glob(os.path.join(path, backup_state.BACKUP_DIR, ".tmp-*")))
    if leftovers and lock["state"] != "running":
        status.notes.append(
            f"{leftovers[0]}: a temporary file of a killed run; the next run removes it"
            if len(leftovers) == 1 else f"{len(leftovers)} temporary files of a killed run "
            f"({', '.join(leftovers)}); the next run removes them")
    backup = os.path.join(path, backup_state.BACKUP_DIR)
    if os.path.isfile(os.path.join(path, backup_state.MANIFEST_FILE)):
        status.state, status.summary = _finished(path)
        if os.path.isdir(backup) and status.state == "finished":
            status.notes.append(f"{backup}: left over (the run stopped after its manifest was "
                                "written); the checkpoint does not need it")
        return status
    try:
        status.state, status.summary = _unfinished(backup, lock["state"] == "running")
    except ValueError as e:
        status.state, status.summary = "damaged", str(e)
    return status


def _finished(path):
    """``(state, summary)`` of a folder with a checkpoint manifest: its files verify or not."""
    manifest_path = os.path.join(path, backup_state.MANIFEST_FILE)
    try:
        manifest = artifacts.verify(manifest_path, artifacts.read(manifest_path, "checkpoint"))
    except (FileNotFoundError, artifacts.ManifestError) as e:
        return "damaged", str(e)
    training = manifest.get("training") or {}
    metrics = manifest.get("metrics") or {}
    accuracy = metrics.get("test_accuracy")
    facts = [f"{manifest.name}.{manifest.get('tag', '?')}"]
    if training.get("epochs") is not None:
        facts.append(f"{training['epochs']} epochs")
    if isinstance(accuracy, (int, float)):
        facts.append(f"test accuracy {accuracy:.4f}")
    files = ", ".join(sorted(manifest.files) or [manifest.file])
    return "finished", (f"{', '.join(facts)}; {files} and {backup_state.MANIFEST_FILE} "
                        f"verify (sha256 {manifest.sha256[:12]})")


def _unfinished(backup, running):
    """``(state, summary)`` of a run without a checkpoint, from its backup (read-only).

    Raises:
        ValueError: the run's record or every backup is unreadable or damaged.
    """
    run_file = os.path.join(backup, backup_state.RUN_FILE)
    settings = (backup_state.read_json(run_file, "run arguments of the backup")
                if os.path.isfile(run_file) else {})
    epochs = settings.get("epochs")
    of = f" of {epochs}" if epochs is not None else ""
    name = settings.get("name", "?")
    state_file = os.path.join(backup, backup_state.STATE_FILE)
    if running:  # being written: report what is recorded, do not check files in flight
        done = (backup_state.read_json(state_file, "training backup state").get("epoch")
                if os.path.isfile(state_file) else 0)
        return "running", f"{name}, {done}{of} epochs backed up so far"
    entry = backup_state.usable_backup(backup)  # checks the sha256, as --resume does
    if entry is None:
        return "not started", (f"{name}, no epoch finished yet; --resume starts at epoch "
                               f"1{of}")
    weights = os.path.join(backup, entry["weights"])
    newest = backup_state.entries(backup_state.read_json(state_file, "training backup "
                                                                     "state"))[0]
    fallback = ("" if newest["weights"] == entry["weights"] else
                f" (the newest, epoch {newest['epoch']}, is missing or damaged)")
    if epochs is not None and entry["epoch"] >= epochs:
        return "resumable", (f"{name}, all {epochs} epochs backed up ({weights}, sha256 "
                             "verified); --resume writes the checkpoint without training")
    return "resumable", (f"{name}, resumes at epoch {entry['epoch'] + 1}{of} from the backup "
                         f"of epoch {entry['epoch']} ({weights}, sha256 verified){fallback}; "
                         "--resume with the run's other arguments continues it")


# ---------------------------------------------------------------------------------- exports
def _is_export_folder(path):
    manifest = os.path.join(path, artifacts.MANIFEST_NAME)
    return os.path.isfile(manifest) and _kind(manifest) == "export"


def _export(path, manifest_path, lock):
    status = Status(path, "export", "", "", lock=lock)
    parent, base = os.path.split(os.path.abspath(path).rstrip(os.sep))
    staging = sorted(glob.glob(os.path.join(parent, f"{_EXPORT_STAGING}{glob.escape(base)}-*")))
    if staging and lock["state"] != "running":
        status.notes.append(f"{staging[0]}: left by a killed export; the next export of {path} "
                            "keeps its completed commit or restores the previous export")
    if not os.path.isfile(manifest_path):
        if os.path.isfile(path):
            raise ValueError(f"{path} is a file without an export manifest ({manifest_path}); "
                             "it is not an output of tn-keras.")
        status.state, status.summary = "damaged", f"{manifest_path} is missing"
        return status
    try:
        manifest = artifacts.verify(manifest_path, artifacts.read(manifest_path, "export"))
    except (FileNotFoundError, artifacts.ManifestError) as e:
        status.state, status.summary = "damaged", str(e)
        return status
    source = (manifest.provenance.model or manifest.name)
    status.state = "complete"
    status.summary = (f"{manifest.get('format', '?')} of {source}, {manifest.size_bytes} bytes; "
                      f"its files and manifest verify (sha256 {manifest.sha256[:12]})")
    return status


# ---------------------------------------------------------------------------- distillations
def _is_distillation(path):
    return any(_LEVEL.match(e) or e == "summary.json" or e.startswith(".tmp-level_")
               for e in os.listdir(path))


def _distillation(path, lock):
    status = Status(path, "distillation", "", "", lock=lock)
    running = lock["state"] == "running"
    found = sorted(int(m.group(1)) for m in map(_LEVEL.match, os.listdir(path)) if m
                   and os.path.isdir(os.path.join(path, m.group(0))))
    verified, damaged = [], []
    for level in found:
        folder = os.path.join(path, f"level_{level}")
        try:
            manifest = artifacts.verify(folder, artifacts.read(folder, "distilled_level"))
        except (FileNotFoundError, artifacts.ManifestError) as e:
            damaged.append(level)
            status.details.append(f"level_{level}: damaged: {e}")
            continue
        verified.append(level)
        status.details.append(f"level_{level}: {manifest.get('num_images', '?')} images, "
                              "verified")
    planned = _summary_levels(path, status)
    expected = sorted(set(planned or []) | set(range(max(found) + 1 if found else 0)))
    missing = [level for level in expected if level not in found]
    for level in missing:
        status.details.append(f"level_{level}: missing")
    status.details.sort(key=lambda line: int(line.split(":")[0].split("_")[1]))
    temporaries = sorted(glob.glob(os.path.join(path, ".tmp-level_*")))
    if temporaries:
        status.notes.append(f"{temporaries[0]}: a level being written" if running else
                            f"{temporaries[0]}: left by a killed run; the next run removes it")
    reused = 0
    while reused in verified:
        reused += 1
    parts = [f"{_levels(verified)} complete and verified" if verified
             else "no complete level"]
    if damaged:
        parts.append(f"{_levels(damaged)} damaged")
    if missing:
        parts.append(f"{_levels(missing)} missing")
    if damaged or (planned is not None and missing):
        status.state = "damaged"
    elif planned is not None:
        status.state = "finished"
    else:
        status.state = "unfinished"
        parts.append("no summary.json yet")
    if status.state != "finished" and not running:
        parts.append(f"--resume reuses {_levels(range(reused))} (if made with the same "
                     "settings) and makes the rest" if reused else
                     "--resume makes every level again")
    status.summary = "; ".join(parts)
    return status


def _summary_levels(path, status):
    """The levels ``summary.json`` lists (written when the run finished), or None."""
    summary = os.path.join(path, "summary.json")
    if not os.path.isfile(summary):
        return None
    try:
        levels = backup_state.read_json(summary, "distillation summary").get("levels")
        return [int(level) for level in levels]
    except (ValueError, TypeError) as e:
        status.notes.append(f"{summary}: unreadable ({e})")
        return None


def _levels(numbers):
    """``[0, 1, 2, 5]`` -> ``"levels 0-2, 5"``; ``[3]`` -> ``"level 3"``."""
    numbers = list(numbers)
    return f"level{'s' if len(numbers) > 1 else ''} {_ranges(numbers)}"


def _ranges(numbers):
    """``[0, 1, 2, 5]`` -> ``"0-2, 5"``."""
    spans = []
    for n in sorted(numbers):
        if spans and n == spans[-1][1] + 1:
            spans[-1][1] = n
        else:
            spans.append([n, n])
    return ", ".join(f"{a}" if a == b else f"{a}-{b}" for a, b in spans)
