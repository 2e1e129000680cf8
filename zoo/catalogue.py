"""The zoo's own architectures as data: ``catalogue.json``, what the registry knows of each.

Importing the registry imports every architecture module, hence Keras and TensorFlow (seconds).
The commands that only read what is known (``tn-keras info``, ``tn-keras card`` of a shipped
checkpoint) answer from this file instead, in a fraction of a second. The file is generated
from the live registry (`records`, ``python -m tn_keras.zoo.catalogue``) and
tests/test_cli_speed.py regenerates it and compares, so it cannot drift from the code.

Standard library only: it runs under the console script's light imports.
"""
import json
import os
import sys

CATALOGUE_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "catalogue.json")


def record_of(spec) -> dict:
    """What `tn_keras.zoo.info` needs from a `registry.ModelSpec`, as JSON values."""
    import dataclasses

    from tn_keras.zoo.registry import builder_default

    return {"name": spec.name, "description": spec.description, "family": spec.family,
            "dataset": spec.dataset, "recipe": dataclasses.asdict(spec.recipe),
            "reference": spec.reference, "default_tag": spec.default_tag,
            "parameters": spec.parameters, "macs_per_image": spec.macs_per_image,
            "input_shape": list(builder_default(spec, "input_shape") or ()),
            "num_classes": builder_default(spec, "num_classes")}


def records() -> dict:
    """The catalogue of the live registry (imports the zoo, so Keras): name -> `record_of`."""
    from tn_keras import zoo
    from tn_keras.zoo.registry import get_spec

    return {name: record_of(get_spec(name)) for name in zoo.list_models()}


def read() -> dict:
    """The catalogue file's records (name -> record)."""
    with open(CATALOGUE_FILE, encoding="utf-8") as f:
        return json.load(f)


def write():
    """Regenerate ``catalogue.json`` from the live registry."""
    from tn_keras.utils.files import atomic_write_json

    atomic_write_json(CATALOGUE_FILE, records())


if __name__ == "__main__":
    write()
    print(f"wrote {CATALOGUE_FILE}", file=sys.stderr)
