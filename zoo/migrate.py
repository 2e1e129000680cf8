"""Move a checkpoint written by tn_keras <= 0.1 (``format_version`` 1) into the tagged layout.

    python -m tn_keras.zoo.migrate OLD_FOLDER NEW_FOLDER TAG

copies ``ARCH.keras`` and ``training_log.csv`` byte for byte (the recorded sha256 is checked
first) and writes a schema-2 manifest (`tn_keras.artifacts`). Recipe fields that tn_keras no
longer has (``label_smoothing``) are dropped. This is how ``saved_models/`` was migrated.
"""
import dataclasses
import json
import os
import shutil
import sys

from tn_keras import artifacts
from tn_keras.zoo.registry import TrainingRecipe

LOG_NAME = "training_log.csv"
_RECORD_KEYS = ("dataset", "input_shape", "num_classes", "class_names", "parameters",
                "trainable_parameters", "macs_per_image", "preprocessing", "metrics",
                "evaluation_command", "reference")


def checkpoint_from_v1(raw, tag, folder):
    """The schema-2 `Manifest` of a version-1 manifest dict, for files already in ``folder``."""
    training = dict(raw["training"])
    recipe_fields = {f.name for f in dataclasses.fields(TrainingRecipe)}
    training["recipe"] = {k: v for k, v in training["recipe"].items() if k in recipe_fields}
    training.setdefault("model_kwargs", {})
    files = {raw["file"]: raw["sha256"]}
    if os.path.isfile(os.path.join(folder, LOG_NAME)):
        files[LOG_NAME] = artifacts.sha256_file(os.path.join(folder, LOG_NAME))
    versions = dict(raw["versions"])
    versions.setdefault("keras_backend", "tensorflow")  # 0.1 trained with TensorFlow only
    provenance = artifacts.Provenance(
        command=training["command"], seed=training["seed"],
        data={"dataset": raw["dataset"], "split": "train",
              "examples": training["train_examples"]})
    record = {k: raw[k] for k in _RECORD_KEYS if k in raw}
    record.update(tag=tag, training=training)
    return artifacts.Manifest(kind="checkpoint", name=raw["name"], file=raw["file"],
                              sha256=raw["sha256"], size_bytes=raw["size_bytes"], files=files,
                              provenance=provenance, versions=versions, created=raw["created"],
                              record=record)


def migrate(old, new, tag):
    """Copy a version-1 checkpoint folder ``old`` to ``new`` as tag ``tag``."""
    path = os.path.join(old, artifacts.MANIFEST_NAME)
    raw = artifacts.load_json(path)
    if not isinstance(raw, dict) or raw.get("format_version") != 1:
        raise ValueError(f"{path} is not a version-1 checkpoint manifest.")
    if artifacts.sha256_file(os.path.join(old, raw["file"])) != raw["sha256"]:
        raise artifacts.ChecksumError(f"{os.path.join(old, raw['file'])} does not match {path}.")
    os.makedirs(new, exist_ok=True)
    for name in (raw["file"], LOG_NAME):
        if os.path.isfile(os.path.join(old, name)):
            shutil.copy2(os.path.join(old, name), os.path.join(new, name))
    manifest = checkpoint_from_v1(raw, tag, new)
    artifacts.write(os.path.join(new, artifacts.MANIFEST_NAME), manifest)
    return manifest


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__.strip().splitlines()[2].strip())
    print(json.dumps(migrate(*sys.argv[1:]).to_dict()["files"], indent=2))
