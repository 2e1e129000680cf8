"""All-or-nothing exports: build in a staging folder beside the target, then commit by renames.

An export is a pair: the file and its manifest (``model.tflite`` + ``model.tflite.json``), or a
SavedModel folder with ``manifest.json`` inside. A pair cannot be replaced by one rename, so a
commit is journalled:

1. everything is built in ``<parent>/.tmp-export-<name>-XXXX/`` (``result`` [+
   ``result.json``], and ``work/`` for scratch such as the SavedModel a TFLite file is
   converted from), never in ``$TMPDIR``;
2. ``commit.json`` is written there, naming the target and the sha256 of the new manifest;
3. the previous export, if any, is moved into the staging folder (``previous/``);
4. the new files are renamed to their final names; 5. the staging folder is deleted.

A kill at any step leaves a staging folder that `recover` (run by the next export of the same
target, under its lock) resolves: if the new manifest is in place (step 4 finished) the commit
stands; otherwise the previous export is moved back, or the half-placed new one removed. So an
export either completes or leaves the previous state, and no temporary folder outlives the
next run. Readers meanwhile refuse a half-placed pair (its sha256 does not match).
"""
import contextlib
import glob
import json
import os
import re
import shutil
import tempfile

from tn_keras.utils.faults import fault_point
from tn_keras.utils.files import atomic_write_json
from tn_keras.utils.files import sha256_file

PREFIX = ".tmp-export-"
JOURNAL = "commit.json"


def _staging_pattern(target):
    parent, base = os.path.split(os.path.abspath(target).rstrip(os.sep))
    return os.path.join(parent, f"{PREFIX}{glob.escape(base)}-*")


# `tempfile.mkdtemp` ends its names with 8 characters of this set. Matching them exactly keeps
# the recovery of ``m`` off ``.tmp-export-m-int8.tflite-XXXXXXXX``, the staging folder of
# another (maybe running) export, ``m-int8.tflite``.
_MKDTEMP_SUFFIX = re.compile(r"^[a-z0-9_]{8}$")


def _staging_folders(target):
    """The staging folders of ``target`` itself, never of a target whose name extends it."""
    prefix = f"{PREFIX}{os.path.basename(os.path.abspath(target).rstrip(os.sep))}-"
    return sorted(folder for folder in glob.glob(_staging_pattern(target))
                  if _MKDTEMP_SUFFIX.match(os.path.basename(folder)[len(prefix):]))


def _pairs(target, manifest_name):
    """``[(name in the staging folder, final path)]`` of an export's parts."""
    if manifest_name is None:  # a folder that holds its own manifest
        return [("result", target)]
    return [("result", target), ("result.json", target + ".json")]


class Staging:
    """A staging folder for one export of ``target``; see the module docstring."""

    def __init__(self, target, folder_export):
        self.target = os.path.abspath(os.fspath(target)).rstrip(os.sep)
        self.folder_export = folder_export
        parent, base = os.path.split(self.target)
        os.makedirs(parent, exist_ok=True)
        self.dir = tempfile.mkdtemp(prefix=f"{PREFIX}{base}-", dir=parent)
        self.work = os.path.join(self.dir, "work")
        os.makedirs(self.work)
        self._keep = False  # a failed commit that could not be rolled back: keep for `recover`

    @property
    def result(self):
        """Where the new export is built (a folder for SavedModel, a file for TFLite)."""
        return os.path.join(self.dir, "result")

    @property
    def result_manifest(self):
        return os.path.join(self.result, "manifest.json") if self.folder_export else (
            self.result + ".json")

    def commit(self):
        """Put the new export in place of the previous one (journalled renames)."""
        fault_point("export-before-commit")  # the new export is complete in the staging folder
        shutil.rmtree(self.work, ignore_errors=True)
        pairs = _pairs(self.target, None if self.folder_export else ".json")
        journal = {"target": self.target, "folder_export": self.folder_export,
                   "manifest_sha256": sha256_file(self.result_manifest)}
        atomic_write_json(os.path.join(self.dir, JOURNAL), journal)
        try:
            previous = os.path.join(self.dir, "previous")
            os.makedirs(previous)
            for staged, final in pairs:
                if os.path.lexists(final):
                    os.replace(final, os.path.join(previous, staged))
            fault_point("export-commit")  # the previous export aside, the new one not placed
            for staged, final in pairs:
                os.replace(os.path.join(self.dir, staged), final)
                fault_point("export-half-placed")  # after the file, before its manifest
        except BaseException:
            # An error, not a kill: `staged` is about to delete this folder, which may hold
            # the previous export; resolve the commit now as the next run's `recover` would.
            try:
                _finish_or_roll_back(self.dir, journal)
            except BaseException:
                self._keep = True  # left for `recover`: never delete the previous export
            raise
        shutil.rmtree(self.dir, ignore_errors=True)

    def discard(self):
        if not self._keep:
            shutil.rmtree(self.dir, ignore_errors=True)


@contextlib.contextmanager
def staged(target, folder_export):
    """Yield a `Staging`; it is discarded unless `Staging.commit` ran.

    Inside the block, Python's `tempfile` writes into the staging folder's ``work/`` (the
    TFLite converter makes temporary files of its own), so a killed export leaves nothing in
    ``$TMPDIR``; the previous `tempfile.tempdir` is restored on exit.
    """
    stage = Staging(target, folder_export)
    saved_tempdir = tempfile.tempdir
    tempfile.tempdir = stage.work
    try:
        yield stage
    finally:
        tempfile.tempdir = saved_tempdir
        stage.discard()


def _manifest_of(target, folder_export):
    return os.path.join(target, "manifest.json") if folder_export else target + ".json"


def recover(target):
    """Resolve the staging folders that killed exports of ``target`` left (hold its lock).

    Returns the list of what was done, for a message (empty when nothing was left).
    """
    done = []
    for folder in _staging_folders(target):
        journal_path = os.path.join(folder, JOURNAL)
        journal = None
        if os.path.isfile(journal_path):
            with contextlib.suppress(OSError, ValueError):
                with open(journal_path, encoding="utf-8") as f:
                    journal = json.load(f)
        if isinstance(journal, dict) and not _same_path(journal.get("target"), target):
            continue  # a journal of another target: not ours to resolve
        if isinstance(journal, dict):
            done.append(_finish_or_roll_back(folder, journal))
        shutil.rmtree(folder, ignore_errors=True)
        done.append(f"removed {folder}")
    return done


def _same_path(recorded, target):
    """True when the journal's ``recorded`` target is ``target`` (spelled either way)."""
    if not isinstance(recorded, str):
        return True  # an older journal without it: the exact folder name decided
    return os.path.realpath(recorded) == os.path.realpath(os.fspath(target))


def check_replaceable(target, folder_export):
    """Refuse to replace an existing ``target`` that is not an export tn_keras wrote.

    ``--overwrite`` replaces an export: a file with its export manifest ``<target>.json``, or
    a folder whose ``manifest.json`` is an export's and lists every file in it. A user's
    folder, a checkpoint folder, a ``.keras`` file or an export holding files added since
    is refused, with the reason, whatever ``overwrite`` says.
    """
    target = os.fspath(target)
    if not os.path.lexists(target):
        return
    manifest_path = _manifest_of(target, folder_export)
    manifest = _export_manifest(manifest_path)
    if manifest is None:
        raise FileExistsError(
            f"{target} is not an export written by tn_keras ({manifest_path} is missing or is "
            "not an export manifest); overwrite replaces only exports. Choose another "
            "output (--out) or move it away.")
    if not folder_export:
        return
    listed = set(manifest.get("files") or {}) | {os.path.basename(manifest_path)}
    foreign = sorted(rel for rel in _files_under(target) if rel not in listed)
    if foreign:
        raise FileExistsError(
            f"{target} holds files its export manifest does not list ({', '.join(foreign[:5])}"
            f"{' ...' if len(foreign) > 5 else ''}); overwrite would delete them. Choose "
            "another output (--out) or move them.")


def _export_manifest(path):
    """The export manifest at ``path`` as a dict, or None (missing, unreadable, another kind)."""
    if not os.path.isfile(path):
        return None
    try:
        with open(path, encoding="utf-8") as f:
            manifest = json.load(f)
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    return manifest if isinstance(manifest, dict) and manifest.get("kind") == "export" else None


def _files_under(folder):
    """Relative paths (with "/") of every file and link under ``folder``."""
    found = []
    for root, dirs, files in os.walk(folder):
        for name in files + [d for d in dirs if os.path.islink(os.path.join(root, d))]:
            rel = os.path.relpath(os.path.join(root, name), folder)
            found.append(rel.replace(os.sep, "/"))
    return found


def recover_unlocked(target):
    """`recover` under the target's lock (for a check made before an export starts)."""
    from tn_keras.utils import locks

    with locks.locked(target, "tn_keras.export recovery"):
        return recover(target)


def _finish_or_roll_back(folder, journal):
    target, folder_export = journal["target"], bool(journal.get("folder_export"))
    manifest = _manifest_of(target, folder_export)
    placed = os.path.isfile(manifest) and sha256_file(manifest) == journal["manifest_sha256"]
    pairs = _pairs(target, None if folder_export else ".json")
    if placed and all(os.path.lexists(final) for _, final in pairs):
        return f"kept the completed export {target}"
    previous = os.path.join(folder, "previous")
    for staged, final in pairs:
        moved_aside = os.path.join(previous, staged)
        if os.path.lexists(moved_aside):
            _remove(final)
            os.replace(moved_aside, final)
        elif not os.path.lexists(os.path.join(folder, staged)):
            _remove(final)  # the new part had been placed, with no previous one to restore
    return f"restored the previous state of {target}"


def _remove(path):
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    elif os.path.lexists(path):
        os.remove(path)
