"""One artifact format for everything tn_keras writes: checkpoints, exports, distilled data.

Every artifact is a folder (or a file beside which its manifest sits) described by one JSON
manifest, `Manifest`. Its envelope is the same for every kind:

    schema_version   int, `SCHEMA_VERSION`
    kind             "checkpoint" | "export" | "distilled_level" | "distilled_dataset"
    name             what it is of (the zoo architecture, the exported model, the level)
    file             the main file, relative to the manifest's folder ("." for a whole tree)
    sha256           of ``file`` (for "." the `sha256_tree` digest of ``files``)
    size_bytes       of ``file`` (for "." the sum over ``files``)
    files            {relative path: sha256} of every file `verify` checks
    provenance       where it came from: source model and weights, command, data, seed
    versions         software versions, the Keras backend included
    created          ISO 8601 UTC creation time

and what only one kind has (a checkpoint's metrics, an export's input spec, ...) sits beside the
envelope at the top level of the JSON, in `Manifest.record`. There is one `write` (atomic), one
`read` (every malformed manifest is one clear `ManifestError` line naming the file) and one
`verify` (the sha256 of every listed file). Nothing here imports TensorFlow: the module must
work under every Keras backend, and without one (`read` and `verify` do not import Keras).
"""
from __future__ import annotations

import dataclasses
import datetime
import hashlib
import json
import os
import re
from typing import Optional

SCHEMA_VERSION = 2
MANIFEST_NAME = "manifest.json"
KINDS = ("checkpoint", "export", "distilled_level", "distilled_dataset")
TREE = "."  # ``file`` of an artifact that is a whole folder (a SavedModel)
# A manifest is a few kB; refuse anything that is clearly not one before reading it into memory.
MAX_MANIFEST_BYTES = 4 << 20
MAX_DEPTH = 16  # nesting of JSON containers; real manifests have at most 5
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_ENVELOPE = ("schema_version", "kind", "name", "file", "sha256", "size_bytes", "files",
             "provenance", "versions", "created")


class ManifestError(ValueError):
    """A manifest that cannot be read or does not describe its files; the message names it."""


class ChecksumError(ManifestError):
    """A file whose sha256 differs from the one its manifest records."""


@dataclasses.dataclass(frozen=True)
class Provenance:
    """Where an artifact came from. Every field is optional; unknown stays None."""

    model: Optional[str] = None  # the zoo NAME.TAG it was made from (or started from)
    weights: Optional[str] = None  # the checkpoint file it was made from
    weights_sha256: Optional[str] = None
    command: Optional[str] = None  # the exact command that made it
    data: Optional[dict] = None  # e.g. {"dataset": "mnist", "split": "train", "examples": N}
    seed: Optional[int] = None


@dataclasses.dataclass(frozen=True)
class Manifest:
    """A typed, versioned manifest. ``manifest["key"]`` reads the envelope, then ``record``."""

    kind: str
    name: str
    file: str
    sha256: str
    size_bytes: int
    files: dict = dataclasses.field(default_factory=dict)
    provenance: Provenance = dataclasses.field(default_factory=Provenance)
    versions: dict = dataclasses.field(default_factory=dict)
    created: str = ""
    record: dict = dataclasses.field(default_factory=dict)
    schema_version: int = SCHEMA_VERSION

    def __getitem__(self, key):
        if key in _ENVELOPE:
            value = getattr(self, key)
            return dataclasses.asdict(value) if key == "provenance" else value
        return self.record[key]

    def get(self, key, default=None):
        try:
            return self[key]
        except KeyError:
            return default

    def __contains__(self, key):
        return key in _ENVELOPE or key in self.record

    def to_dict(self) -> dict:
        """The JSON form: the envelope, then the record's keys beside it."""
        clash = sorted(set(self.record) & set(_ENVELOPE))
        if clash:
            raise ValueError(f"Manifest record keys {clash} clash with the envelope.")
        envelope = {key: self[key] for key in _ENVELOPE}
        return json.loads(json.dumps({**envelope, **self.record}, default=_json_default))


def now() -> str:
    """The creation time as the manifests record it (UTC, seconds)."""
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def software_versions() -> dict:
    """Versions of what produced an artifact, with the Keras backend (no TensorFlow import)."""
    from tn_keras.utils.versions import software_versions as versions

    return versions()


def sha256_file(path: str, chunk_size: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(chunk_size), b""):
            digest.update(chunk)
    return digest.hexdigest()


def tree_digest(files: dict) -> str:
    """sha256 of the sorted ``"<relpath> <sha256>\\n"`` lines: a folder's digest."""
    lines = "".join(f"{rel} {sha}\n" for rel, sha in sorted(files.items()))
    return hashlib.sha256(lines.encode("utf-8")).hexdigest()


def sha256_tree(folder: str, exclude=(MANIFEST_NAME,)) -> tuple:
    """``(digest, {relpath: sha256})`` of every file under ``folder``; top-level names in
    ``exclude`` (the manifest, which cannot hash itself) are skipped."""
    files = {}
    for root, dirs, names in os.walk(folder):
        dirs.sort()
        for name in sorted(names):
            full = os.path.join(root, name)
            rel = os.path.relpath(full, folder).replace(os.sep, "/")
            if rel not in exclude:
                files[rel] = sha256_file(full)
    return tree_digest(files), files


def file_entry(folder: str, rel: str) -> tuple:
    """``(sha256, size_bytes)`` of ``folder/rel``."""
    path = os.path.join(folder, rel)
    return sha256_file(path), os.path.getsize(path)


def write(path: str, manifest: Manifest) -> None:
    """Write ``manifest`` to the file ``path`` atomically (temporary name, fsync, rename)."""
    from tn_keras.utils.files import atomic_write_bytes

    _check(manifest.to_dict(), path, manifest.kind)  # never write what `read` would refuse
    text = json.dumps(manifest.to_dict(), indent=2, sort_keys=True) + "\n"
    atomic_write_bytes(path, text.encode("utf-8"), overwrite=True)


def manifest_file(path: str) -> str:
    """The manifest file of ``path``: a folder's ``manifest.json``, or ``path`` itself."""
    path = os.fspath(path)
    return os.path.join(path, MANIFEST_NAME) if os.path.isdir(path) else path


def load_json(path: str):
    """The parsed JSON of a manifest file, or a `ManifestError` naming it (size, encoding,
    syntax, nesting). A missing file is a FileNotFoundError."""
    if not os.path.lexists(path):
        raise FileNotFoundError(f"Manifest {path} does not exist.")
    if not os.path.isfile(path):
        what = "a folder" if os.path.isdir(path) else "not a regular file"
        raise ManifestError(f"Manifest {path} is {what}.")
    try:
        size = os.path.getsize(path)
        if size > MAX_MANIFEST_BYTES:
            raise ManifestError(f"Manifest {path} is {size} bytes, over the "
                                f"{MAX_MANIFEST_BYTES}-byte limit for a manifest.")
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise ManifestError(f"Cannot read manifest {path}: {e.strerror or e}.") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ManifestError(f"Manifest {path} is not UTF-8 text (byte {e.start}).") from None
    try:
        raw = json.loads(text, parse_constant=_refuse_constant)
    except json.JSONDecodeError as e:
        raise ManifestError(f"Manifest {path} is not valid JSON: {e.msg} at line {e.lineno} "
                            f"column {e.colno}.") from None
    except (RecursionError, ValueError) as e:
        raise ManifestError(f"Manifest {path} is not a manifest: {_one_line(e)}.") from None
    if _depth(raw) > MAX_DEPTH:
        raise ManifestError(f"Manifest {path} nests deeper than {MAX_DEPTH} levels.")
    return raw


def read(path: str, kind: Optional[str] = None) -> Manifest:
    """The `Manifest` at ``path`` (a manifest file, or a folder holding ``manifest.json``).

    Raises:
        FileNotFoundError: no manifest there.
        ManifestError: anything malformed, a ``kind`` other than expected, or a ``file`` /
            ``files`` entry that points outside the manifest's folder; the message names the
            file and what is wrong, on one line.
    """
    path = manifest_file(path)
    return from_dict(load_json(path), path, kind)


def from_dict(raw, path: str, kind: Optional[str] = None) -> Manifest:
    """A `Manifest` from parsed JSON, checked as `read` checks it (``path`` names it)."""
    _check(raw, path, kind)
    record = {k: v for k, v in raw.items() if k not in _ENVELOPE}
    provenance = raw.get("provenance") or {}
    unknown = sorted(set(provenance) - {f.name for f in dataclasses.fields(Provenance)})
    if unknown:
        raise ManifestError(f"Manifest {path}: unknown provenance keys {unknown}.")
    return Manifest(kind=raw["kind"], name=raw["name"], file=raw["file"], sha256=raw["sha256"],
                    size_bytes=raw["size_bytes"], files=dict(raw.get("files") or {}),
                    provenance=Provenance(**provenance), versions=dict(raw.get("versions") or {}),
                    created=raw.get("created") or "", record=record,
                    schema_version=raw["schema_version"])


def _check(raw, path, kind):
    if not isinstance(raw, dict):
        raise ManifestError(f"Manifest {path} holds {_json_type(raw)}, not a JSON object.")
    missing = [k for k in ("schema_version", "kind", "name", "file", "sha256", "size_bytes")
               if k not in raw]
    if missing:
        legacy = " (an older tn_keras format)" if "format_version" in raw or "format" in raw \
            else ""
        raise ManifestError(f"Manifest {path} has no {', '.join(map(repr, missing))} "
                            f"entr{'y' if len(missing) == 1 else 'ies'}{legacy}.")
    if raw["schema_version"] != SCHEMA_VERSION:
        raise ManifestError(f"Manifest {path} has schema_version {raw['schema_version']!r}; "
                            f"this tn_keras reads {SCHEMA_VERSION}.")
    if raw["kind"] not in KINDS:
        raise ManifestError(f"Manifest {path} has kind {raw['kind']!r}; expected one of "
                            f"{', '.join(KINDS)}.")
    if kind is not None and raw["kind"] != kind:
        raise ManifestError(f"Manifest {path} describes a {raw['kind']}, not a {kind}.")
    _check_types(raw, path)
    for rel in [raw["file"], *(raw.get("files") or {})]:
        check_inside(rel, path)


def _check_types(raw, path):
    expected = {"name": str, "file": str, "sha256": str, "size_bytes": int, "files": dict,
                "provenance": dict, "versions": dict, "created": str}
    for key, kind in expected.items():
        value = raw.get(key)
        if value is None and key in ("files", "provenance", "versions", "created"):
            continue
        if not isinstance(value, kind) or isinstance(value, bool):
            raise ManifestError(f"Manifest {path}: {key!r} is {_json_type(value)}, expected "
                                f"{_json_type(kind())}.")
    if raw["size_bytes"] < 0:
        raise ManifestError(f"Manifest {path}: 'size_bytes' is negative.")
    digests = [("sha256", raw["sha256"])] + [(f"files[{k!r}]", v)
                                             for k, v in (raw.get("files") or {}).items()]
    for key, digest in digests:
        if not isinstance(digest, str) or not _SHA256.match(digest):
            raise ManifestError(f"Manifest {path}: {key} is not a sha256 hex digest.")


def check_inside(rel, path: str) -> str:
    """Refuse a manifest entry that points outside the manifest's folder; return its path."""
    folder = os.path.dirname(os.path.abspath(path))
    if rel == TREE:
        return folder
    if not isinstance(rel, str) or not rel or "\x00" in rel or os.path.isabs(rel) \
            or rel.startswith(("/", "\\")) or ".." in re.split(r"[\\/]", rel):
        raise ManifestError(f"Manifest {path}: file entry {rel!r} is not a path inside its "
                            "folder; refusing it.")
    full = os.path.realpath(os.path.join(folder, rel))
    if os.path.commonpath([full, os.path.realpath(folder)]) != os.path.realpath(folder):
        raise ManifestError(f"Manifest {path}: file entry {rel!r} resolves outside its folder "
                            f"({full}); refusing it.")
    return full


def verify(path: str, manifest: Optional[Manifest] = None, locate=None) -> Manifest:
    """Check every file the manifest at ``path`` lists against its sha256; return the manifest.

    ``locate(rel, path_beside_manifest) -> path`` says where a listed file is when it may live
    elsewhere (the shipped distilled sets keep their images in the data folder).

    Raises ChecksumError naming the first file that is missing or differs.
    """
    path = manifest_file(path)
    manifest = manifest if manifest is not None else read(path)
    files = dict(manifest.files)
    if manifest.file != TREE:
        files.setdefault(manifest.file, manifest.sha256)
        if files[manifest.file] != manifest.sha256:
            raise ChecksumError(f"Manifest {path} records two sha256 for {manifest.file!r}.")
    elif tree_digest(files) != manifest.sha256:
        raise ChecksumError(f"Manifest {path}: its files do not add up to its sha256.")
    for rel, want in sorted(files.items()):
        full = check_inside(rel, path)
        if locate is not None:
            full = locate(rel, full)
        if not os.path.isfile(full):
            raise ChecksumError(f"{full} is missing (listed in {path}).")
        got = sha256_file(full)
        if got != want:
            raise ChecksumError(f"{full} is corrupt or was replaced: its sha256 is {got}, but "
                                f"{path} records {want}.")
    return manifest


def _depth(value, level=1):
    if isinstance(value, dict):
        return max([level] + [_depth(v, level + 1) for v in value.values()])
    if isinstance(value, list):
        return max([level] + [_depth(v, level + 1) for v in value])
    return level


def _json_type(value):
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean",
            int: "a number", float: "a number", type(None): "null"}.get(type(value),
                                                                       type(value).__name__)


def _refuse_constant(name):
    raise ValueError(f"{name} is not valid JSON")


def _one_line(error):
    return str(error).splitlines()[0] if str(error) else type(error).__name__


def _json_default(value):
    if hasattr(value, "tolist"):  # NumPy scalars and arrays (accuracies, shapes)
        return value.tolist()
    if dataclasses.is_dataclass(value):
        return dataclasses.asdict(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")
