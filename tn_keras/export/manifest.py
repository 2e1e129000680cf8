"""The small JSON manifest written beside every export: what the file is and where it came from.

A ``.tflite`` file gets ``<path>.json``; a SavedModel folder gets ``manifest.json`` inside it.
Written atomically (`tn_keras.utils.files.atomic_write_json`), keys sorted for stable diffs.
"""
import datetime
import hashlib
import importlib.metadata
import json
import os
from typing import Optional, Tuple

from tn_keras.utils.files import atomic_write_json
from tn_keras.utils.files import sha256_file
from tn_keras.utils.versions import software_versions

MANIFEST_NAME = "manifest.json"
SCHEMA_VERSION = 1


def manifest_path(path: str, format: str) -> str:
    """Where the manifest of the export at ``path`` lives."""
    if format == "saved_model":
        return os.path.join(path, MANIFEST_NAME)
    return path + ".json"


def sha256_tree(folder: str, exclude: Tuple[str, ...] = (MANIFEST_NAME,)) -> Tuple[str, dict]:
    """A digest of a folder: sha256 of the sorted ``"<relpath> <sha256>\\n"`` lines.

    Returns ``(digest, {relpath: sha256})``; names in ``exclude`` (the manifest itself, which
    cannot hash itself) at the top level are skipped.
    """
    files = {}
    for root, dirs, names in os.walk(folder):
        dirs.sort()
        for name in sorted(names):
            full = os.path.join(root, name)
            rel = os.path.relpath(full, folder).replace(os.sep, "/")
            if rel in exclude:
                continue
            files[rel] = sha256_file(full)
    digest = hashlib.sha256(
        "".join(f"{rel} {sha}\n" for rel, sha in sorted(files.items())).encode("utf-8")
    )
    return digest.hexdigest(), files


def export_versions() -> dict:
    """`software_versions` plus the LiteRT runtime the exports were checked with."""
    versions = software_versions()
    try:
        versions["ai_edge_litert"] = importlib.metadata.version("ai-edge-litert")
    except importlib.metadata.PackageNotFoundError:
        versions["ai_edge_litert"] = None
    return versions


def build_manifest(
    *,
    format: str,
    file: str,
    sha256: str,
    size_bytes: int,
    source: Optional[dict],
    input_spec: dict,
    output_spec: dict,
    class_names: Optional[list],
    quantization: Optional[dict],
    ops: Optional[list] = None,
    parity: Optional[dict] = None,
    files: Optional[dict] = None,
    graph_transforms: Optional[list] = None,
) -> dict:
    """The manifest as a dict (see the module docstring for what each export records)."""
    manifest = {
        "schema_version": SCHEMA_VERSION,
        "format": format,
        "file": file,
        "sha256": sha256,
        "size_bytes": int(size_bytes),
        "source": source,
        "input": input_spec,
        "output": output_spec,
        "class_names": class_names,
        "quantization": quantization,
        "parity_check": parity,
        "versions": export_versions(),
        "created_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    if ops is not None:
        manifest["ops"] = ops
    if files is not None:
        manifest["files"] = files
    if graph_transforms is not None:
        manifest["graph_transforms"] = graph_transforms
    return manifest


def write_manifest(path: str, manifest: dict) -> None:
    """Write atomically; a manifest always describes the file just written, so it replaces."""
    atomic_write_json(path, manifest, overwrite=True)


def read_manifest(path: str, format: Optional[str] = None) -> dict:
    """The manifest of an export: pass the export's path (or the manifest's own path)."""
    if not path.endswith(".json"):
        if format is None:
            format = "saved_model" if os.path.isdir(path) else "tflite"
        path = manifest_path(path, format)
    with open(path, encoding="utf-8") as f:
        return json.load(f)
