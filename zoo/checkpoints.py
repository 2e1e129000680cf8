"""Where checkpoints live, how their manifests read, and how they are verified before loading.

A checkpoint is a folder ``<name>/`` holding ``<name>.keras`` and ``manifest.json``. Shipped
checkpoints are in the package (``saved_models/`` in the source tree, ``tn_keras.saved_models``
once installed); the ones a user trains go to ``$TN_KERAS_HOME/models/<name>/`` (default
``~/.keras/tn_keras``). A checkpoint is deserialised only after its sha256 matches its manifest,
and always with ``safe_mode=True``.
"""
import importlib.resources
import json
import os

import keras

from tn_keras.utils.files import sha256_file

MANIFEST_NAME = "manifest.json"


class ChecksumError(ValueError):
    """A checkpoint file whose sha256 differs from the one its manifest records."""


def tn_keras_home():
    """``$TN_KERAS_HOME``, or ``~/.keras/tn_keras``."""
    return os.environ.get("TN_KERAS_HOME") or os.path.join(
        os.path.expanduser("~"), ".keras", "tn_keras"
    )


def cache_dir(name):
    """Where ``tn-keras train NAME`` writes by default and where ``load`` looks second."""
    return os.path.join(tn_keras_home(), "models", name)


def shipped_dir(name):
    """The folder of the checkpoint shipped with the package for ``name``."""
    return os.path.join(str(importlib.resources.files("tn_keras.saved_models")), name)


def read_manifest(folder):
    """The manifest of a checkpoint folder, or None when it has none."""
    path = os.path.join(folder, MANIFEST_NAME)
    if not os.path.isfile(path):
        return None
    try:
        with open(path, encoding="utf-8") as f:
            manifest = json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        raise ValueError(f"Cannot read the checkpoint manifest {path}: {e}") from e
    for key in ("name", "file", "sha256"):
        if key not in manifest:
            raise ValueError(f"The checkpoint manifest {path} has no {key!r} entry.")
    return manifest


def find_checkpoint(name):
    """``(folder, manifest)`` of the checkpoint for ``name``: shipped first, then the cache."""
    for folder in (shipped_dir(name), cache_dir(name)):
        manifest = read_manifest(folder)
        if manifest is not None:
            return folder, manifest
    return None, None


def verify_checkpoint(folder, manifest, expected_name=None):
    """The path of the checkpoint file once its name and sha256 match the manifest."""
    if expected_name is not None and manifest["name"] != expected_name:
        raise ValueError(
            f"The checkpoint in {folder} is for {manifest['name']!r}, not {expected_name!r}."
        )
    path = os.path.join(folder, manifest["file"])
    if not os.path.isfile(path):
        raise FileNotFoundError(f"The manifest in {folder} names {manifest['file']!r}, "
                                f"which does not exist.")
    actual = sha256_file(path)
    if actual != manifest["sha256"]:
        raise ChecksumError(
            f"Checkpoint {path} is corrupt or was replaced: its sha256 is {actual}, but "
            f"{os.path.join(folder, MANIFEST_NAME)} records {manifest['sha256']}. Refusing to "
            "load it; restore the file or retrain."
        )
    return path


def load_verified(folder, manifest, expected_name=None, compile=True):
    """Verify, then deserialise with ``safe_mode=True`` (no arbitrary code from the file)."""
    path = verify_checkpoint(folder, manifest, expected_name)
    import tn_keras.layers  # noqa: F401  (registers the custom layers for deserialisation)

    return keras.saving.load_model(path, compile=compile, safe_mode=True)
