"""The manifest written beside every export: what the file is and where it came from.

A ``.tflite`` / ``.onnx`` file gets ``<path>.json``; a SavedModel folder gets ``manifest.json``
inside it. Both are `tn_keras.artifacts` manifests of kind ``export`` (one format, one reader,
one tree hasher for the whole project); what only exports record (``format``, ``input``,
``output``, ``quantization``, ``parity_check``, ...) sits beside the common envelope.
"""
import dataclasses
import importlib.metadata
import os
from typing import Optional

from tn_keras import artifacts
from tn_keras.artifacts import sha256_tree  # noqa: F401  (the one tree hasher)
from tn_keras.export import formats as formats_lib

MANIFEST_NAME = artifacts.MANIFEST_NAME
SCHEMA_VERSION = artifacts.SCHEMA_VERSION


def manifest_path(path: str, format: str) -> str:
    """Where the manifest of the export at ``path`` lives: inside a folder format's folder,
    beside a file (the format's `tn_keras.export.formats.ExportFormat.writes`)."""
    return folder_or_file_manifest(path, formats_lib.get_format(format).writes_folder)


def folder_or_file_manifest(path: str, folder: bool) -> str:
    """``<path>/manifest.json`` for a folder export, ``<path>.json`` for a file."""
    return os.path.join(path, MANIFEST_NAME) if folder else path + ".json"


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


@dataclasses.dataclass(frozen=True)
class ExportedFile:
    """What one format's writer made: the file, its specs and its checks (the manifest's record).

    ``file`` is the name the export is committed under ("." for a folder, whose ``files`` lists
    ``{relative path: sha256}``); ``parity`` is the check against the Keras model (None when
    ``verify=False``); ``ops`` the op names in the file; ``graph_transforms`` the rewrites made
    before conversion.
    """

    file: str
    sha256: str
    size_bytes: int
    input_spec: dict
    output_spec: dict
    quantization: Optional[dict] = None
    parity: Optional[dict] = None
    ops: Optional[list] = None
    files: Optional[dict] = None
    graph_transforms: Optional[list] = None


def provenance(config) -> artifacts.Provenance:
    """Where the exported model came from: its zoo name and checkpoint (`ExportConfig`)."""
    if config.checkpoint is None:
        return artifacts.Provenance(model=config.model_name)
    checkpoint = os.fspath(config.checkpoint)
    return artifacts.Provenance(model=config.model_name, weights=os.path.basename(checkpoint),
                                weights_sha256=artifacts.sha256_file(checkpoint))


def build_manifest(config, exported: ExportedFile, keras_model_name: str,
                   class_names: Optional[list]) -> dict:
    """The manifest of ``exported``, made with the `ExportConfig` ``config`` from the Keras model
    named ``keras_model_name``, as the dict written to disk (`artifacts.Manifest.to_dict`)."""
    record = {"format": config.format, "keras_model_name": keras_model_name,
              "input": exported.input_spec, "output": exported.output_spec,
              "class_names": class_names, "quantization": exported.quantization,
              "parity_check": exported.parity}
    for key in ("ops", "graph_transforms"):
        if getattr(exported, key) is not None:
            record[key] = getattr(exported, key)
    manifest = artifacts.Manifest(
        kind="export", name=config.model_name or keras_model_name or exported.file,
        file=exported.file, sha256=exported.sha256, size_bytes=int(exported.size_bytes),
        files=dict(exported.files or {}), provenance=provenance(config),
        versions=export_versions(), created=artifacts.now(), record=record)
    return manifest.to_dict()


def write_manifest(path: str, manifest: dict) -> None:
    """Write atomically; a manifest always describes the file just written, so it replaces."""
    artifacts.write(path, artifacts.from_dict(manifest, path, kind="export"))


def read_manifest(path: str, format: Optional[str] = None) -> dict:
    """The manifest of an export, checked (`artifacts.read`): pass the export's path or the
    manifest's own path."""
    if not path.endswith(".json"):
        path = (folder_or_file_manifest(path, os.path.isdir(path)) if format is None
                else manifest_path(path, format))
    return upgrade_source_block(artifacts.read(path, kind="export").to_dict())


def upgrade_source_block(manifest: dict) -> dict:
    """An export manifest from an earlier tn_keras keeps its origin in a ``source`` block
    (``model``, ``keras_model_name``, ``checkpoint``, ``checkpoint_sha256``) beside an empty
    ``provenance``: move it into ``provenance``, where new manifests keep it."""
    source = manifest.get("source")
    if not isinstance(source, dict):
        return manifest
    manifest = dict(manifest)
    del manifest["source"]
    old = {"model": source.get("model"), "weights": source.get("checkpoint"),
           "weights_sha256": source.get("checkpoint_sha256")}
    current = dict(manifest.get("provenance") or {})
    manifest["provenance"] = dict(current, **{k: v for k, v in old.items()
                                              if current.get(k) is None})
    manifest.setdefault("keras_model_name", source.get("keras_model_name"))
    return manifest
