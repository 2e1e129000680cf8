"""The zoo's own architectures as data: ``catalogue.json``, what the registry knows of each.

Importing the registry imports every architecture module, hence Keras and TensorFlow (seconds).
The commands that only read what is known (``tn-keras info``, ``tn-keras card`` of a shipped
checkpoint) answer from this file instead, in a fraction of a second. The file is generated
from the live registry (`records`, ``python -m tn_keras.zoo.catalogue``) and
tests/test_cli_speed.py regenerates it and compares, so it cannot drift from the code.

A record is what the registration states (`static_record`) plus what building the model
gives (`derived_facts`: parameters, MACs, degree), which the registrations do not repeat.

Standard library only: it runs under the console script's light imports.
"""
import json
import os
import sys

CATALOGUE_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "catalogue.json")


#: The facts of an architecture that are computed by building it (`derived_facts`), not
#: written in its registration; the catalogue caches them.
DERIVED_FACTS = ("parameters", "macs_per_image", "degree")


def static_record(spec) -> dict:
    """What the registration itself states (`registry.ModelSpec` and the builder's defaults),
    as JSON values; nothing is built."""
    import dataclasses

    from tn_keras.zoo.registry import builder_default

    return {"name": spec.name, "description": spec.description, "family": spec.family,
            "dataset": spec.dataset, "recipe": dataclasses.asdict(spec.recipe),
            "reference": spec.reference, "default_tag": spec.default_tag,
            "input_shape": list(builder_default(spec, "input_shape") or ()),
            "num_classes": builder_default(spec, "num_classes"),
            "cross_architecture_role": spec.cross_architecture_role,
            "cross_architecture_datasets": list(spec.cross_architecture_datasets)}


def derived_facts(spec) -> dict:
    """The default build's counts and polynomial degree, computed from the built model:
    parameters (``count_params``: every weight, BatchNorm's moving statistics included), MACs
    per image (`tn_keras.zoo.complexity`), and the exact degree of the logits in the raw
    input (`tn_keras.interpret.degree`; None for a network that is not a polynomial)."""
    from tn_keras import interpret
    from tn_keras.zoo.complexity import model_macs

    model = spec.builder()
    try:
        degree = interpret.degree(model)
    except interpret.NotAPolynomialError:
        degree = None
    return {"parameters": int(model.count_params()), "macs_per_image": int(model_macs(model)),
            "degree": degree}


def record_of(spec) -> dict:
    """The catalogue record of a `registry.ModelSpec`: `static_record` and `derived_facts`
    (so it builds the model)."""
    return {**static_record(spec), **derived_facts(spec)}


def cached_facts(spec) -> "dict | None":
    """`derived_facts` of ``spec`` from the catalogue file, or None when the file has no record
    of it or its record is of another registration (a user's architecture of the same name)."""
    record = read().get(spec.name)
    if record is None or {k: v for k, v in record.items() if k not in DERIVED_FACTS} != (
            json.loads(json.dumps(static_record(spec)))):
        return None
    return {k: record[k] for k in DERIVED_FACTS}


def records() -> dict:
    """The catalogue of the live registry (imports the zoo, so Keras, and builds every
    architecture once: a few seconds): name -> `record_of`."""
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
