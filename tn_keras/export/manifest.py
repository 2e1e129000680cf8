"""The manifest written beside every export: what the file is and where it came from.

A ``.tflite`` / ``.onnx`` file gets ``<path>.json``; a SavedModel folder gets ``manifest.json``
inside it. Both are `tn_keras.artifacts` manifests of kind ``export`` (one format, one reader,
one tree hasher for the whole project); what only exports record (``format``, ``input``,
``output``, ``quantization``, ``parity_check``, ...) sits beside the common envelope.
"""
import importlib.metadata
import os
from typing import Optional

from tn_keras import artifacts
from tn_keras.artifacts import sha256_tree  # noqa: F401  (the one tree hasher)

MANIFEST_NAME = artifacts.MANIFEST_NAME
SCHEMA_VERSION = artifacts.SCHEMA_VERSION
FOLDER_FORMATS = ("saved_model",)


def manifest_path(path: str, format: str) -> str:
    """Where the manifest of the export at ``path`` lives."""
    if format in FOLDER_FORMATS:
        return os.path.join(path, MANIFEST_NAME)
    return path + ".json"


def export_versions() -> dict:
    """`artifacts.software_versions` plus the runtimes the exports were checked with."""
    versions = artifacts.software_versions()
    for key, package in (("ai_edge_litert", "ai-edge-litert"), ("onnxruntime", "onnxruntime"),
                         ("tf2onnx", "tf2onnx")):
        try:
            versions[key] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[key] = None
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
    """The manifest, as the dict written to disk (`artifacts.Manifest.to_dict`)."""
    source = source or {}
    record = {"format": format, "source": source, "input": input_spec, "output": output_spec,
              "class_names": class_names, "quantization": quantization,
              "parity_check": parity}
    for key, value in (("ops", ops), ("graph_transforms", graph_transforms)):
        if value is not None:
            record[key] = value
    provenance = artifacts.Provenance(model=source.get("model"),
                                      weights=source.get("checkpoint"),
                                      weights_sha256=source.get("checkpoint_sha256"))
    manifest = artifacts.Manifest(
        kind="export", name=source.get("model") or source.get("keras_model_name") or file,
        file=file, sha256=sha256, size_bytes=int(size_bytes), files=dict(files or {}),
        provenance=provenance, versions=export_versions(), created=artifacts.now(),
        record=record)
    return manifest.to_dict()


def write_manifest(path: str, manifest: dict) -> None:
    """Write atomically; a manifest always describes the file just written, so it replaces."""
    artifacts.write(path, artifacts.from_dict(manifest, path, kind="export"))


def read_manifest(path: str, format: Optional[str] = None) -> dict:
    """The manifest of an export, checked (`artifacts.read`): pass the export's path or the
    manifest's own path."""
    if not path.endswith(".json"):
        if format is None:
            format = "saved_model" if os.path.isdir(path) else "tflite"
        path = manifest_path(path, format)
    return artifacts.read(path, kind="export").to_dict()
