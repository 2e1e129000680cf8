"""The zoo describes itself (issue 26): adding an architecture is one module and its
registration, then ``python -m tn_keras.zoo.catalogue``; nothing else lists it.

- The README's and docs/zoo.md's architecture tables list exactly the registered
  architectures, with the registry's parameter counts and degrees as the tables print them.
- A fake architecture registered here at run time is listed, built, shown by ``tn-keras list``
  and ``tn-keras info``, has its facts derived, becomes a cross-architecture partner of
  ``tn-keras distill-eval``, and is reported missing from the documentation tables: with no
  other change anywhere.
"""
import json
import os
import re

import keras
import numpy as np
import pytest

from tn_keras import zoo
from tn_keras.zoo import blocks
from tn_keras.zoo import catalogue

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# (file, the header line of its table of architectures)
TABLES = {
    "README.md": "| weights | dataset | parameters | test accuracy | lossless test | what |",
    "docs/zoo.md": "| architecture | what |",
}
_NUMBER = r"[\d.,]+(?: M)?"


def table_rows(path, header):
    """``[(names, cells)]`` of the Markdown table under ``header`` in ``path``: the names are the
    first cell's backticked ones, a ``NAME.TAG`` reduced to NAME and a name written as a suffix
    (``_small`` after ``cifar_taylornet_fast``) completed from the one before it."""
    with open(os.path.join(ROOT, path), encoding="utf-8") as f:
        lines = f.read().splitlines()
    start = lines.index(header) + 2  # the header, then its --- line
    rows = []
    for line in lines[start:]:
        if not line.startswith("| "):
            break
        cells = [cell.strip() for cell in line.strip("|").split(" | ")]
        names = []
        for name in re.findall(r"`([^`]+)`", cells[0]):
            name = name.split(".")[0]
            names.append(names[-1] + name if name.startswith("_") else name)
        rows.append((names, cells))
    return rows


def printed_as(text, value):
    """Whether ``value`` prints as ``text``: ``1,101,258``, or rounded to millions (``4.9 M``,
    ``2.79 M``), or a power of two (``2^11``)."""
    if text.endswith(" M"):
        digits = text[:-2]
        decimals = len(digits.partition(".")[2])
        return round(value / 1e6, decimals) == float(digits)
    if "^" in text:
        base, exponent = text.split("^")
        return int(base) ** int(exponent) == value
    return int(text.replace(",", "")) == value


def documented_facts(path, header):
    """``{name: {"parameters": text, "degree": text}}`` of one table (a fact it does not print
    is absent). A row of several names prints several counts, ``a / b``, in their order."""
    facts = {}
    for names, cells in table_rows(path, header):
        if path == "README.md":
            counts = cells[2].split(" / ")
        else:
            found = re.search(rf"({_NUMBER}(?: / {_NUMBER})*) parameters", cells[1])
            counts = found.group(1).split(" / ") if found else []
        degree = re.search(r"degree (\d+(?:\^\d+)?)", cells[-1])
        assert counts == [] or len(counts) == len(names), (path, names, counts)
        for i, name in enumerate(names):
            assert name not in facts, f"{path}: {name} is listed twice"
            facts[name] = {}
            if counts:
                facts[name]["parameters"] = counts[i]
            if degree:
                facts[name]["degree"] = degree.group(1)
    return facts


def undocumented(path, header):
    """Registered architectures the table does not list, and listed names not registered."""
    listed = set(documented_facts(path, header))
    return set(zoo.list()) - listed, listed - set(zoo.list())


@pytest.mark.parametrize("path", sorted(TABLES))
def test_tables_list_the_registered_architectures_with_their_facts(path):
    assert undocumented(path, TABLES[path]) == (set(), set())
    records = catalogue.read()
    for name, printed in documented_facts(path, TABLES[path]).items():
        for fact, text in printed.items():
            assert printed_as(text, records[name][fact]), (
                f"{path}: {name}'s {fact} prints as {text!r}; the registry's (catalogue.json) "
                f"is {records[name][fact]:,}")


def test_printed_numbers():
    assert printed_as("1,101,258", 1_101_258) and printed_as("4.9 M", 4_933_578)
    assert printed_as("2.79 M", 2_789_560) and printed_as("2^11", 2048)
    assert not printed_as("1.1 M", 1_973_944) and not printed_as("12,750", 12_751)


def tiny_taylornet(input_shape=(7, 7, 1), num_classes=10, width=1.0,
                   classifier_activation="softmax", name="test_tiny_taylornet"):
    """A test's TaylorNet: 7x7 padded to 8x8, an order-3 then an order-2 CG step."""
    inputs = keras.Input(input_shape, name="image")
    x = keras.layers.Rescaling(1.0 / 255.0, name="preprocessing")(inputs)
    x = keras.layers.ZeroPadding2D(((0, 1), (0, 1)), name="pad")(x)
    x = blocks.cg_bn(x, blocks.scaled(width, 4), "cg1", order=3)
    x = blocks.cg_bn(x, blocks.scaled(width, 6), "cg2")
    return keras.Model(inputs, blocks.classifier_head(x, num_classes, classifier_activation),
                       name=name)


FAKE = "test_tiny_taylornet"
FAKE_REGISTRATION = dict(dataset="mnist7x7", recipe=zoo.TrainingRecipe(epochs=1),
                         cross_architecture_role="taylornet")


def test_a_new_architecture_needs_its_registration_only(capsys):
    from test_interpret import structural_degree
    from tn_keras.cli import main
    from tn_keras.distill import cross_architecture
    from tn_keras.zoo.complexity import model_macs

    assert FAKE not in zoo.list()
    with zoo.registered(FAKE, tiny_taylornet, **FAKE_REGISTRATION) as spec:
        assert FAKE in zoo.list() and zoo.list("test_tiny*") == [FAKE]
        model = zoo.build(FAKE)
        assert model.input_shape == (None, 7, 7, 1) and model.output_shape == (None, 10)
        assert zoo.build(FAKE, width=0.5).get_layer("cg1").filters == 2
        parameters = sum(int(np.prod(weight.shape)) for weight in model.weights)

        # tn-keras list and info, in process (the zoo is loaded, so the live registry).
        capsys.readouterr()
        assert main(["list"]) == 0
        assert FAKE in capsys.readouterr().out.splitlines()
        assert main(["info", FAKE]) == 0
        shown = json.loads(capsys.readouterr().out)
        assert (shown["name"], shown["dataset"], shown["family"]) == (FAKE, "mnist7x7",
                                                                      "taylornet")
        assert (shown["input_shape"], shown["num_classes"]) == ([7, 7, 1], 10)
        assert shown["parameters"] == parameters
        assert shown["macs_per_image"] == model_macs(model) > 0
        assert shown["description"] == tiny_taylornet.__doc__.split("\n")[0]

        # Its facts, derived (what `python -m tn_keras.zoo.catalogue` would write for it); not
        # in catalogue.json yet, which tests/test_cli_speed.py would report as stale.
        record = catalogue.record_of(spec)
        assert record["parameters"] == parameters
        assert record["degree"] == structural_degree(model)[0] == 3 * 2
        assert catalogue.cached_facts(spec) is None and FAKE not in catalogue.read()

        # A cross-architecture partner of distill-eval for its dataset, from its registration.
        assert cross_architecture.zoo_architecture("taylornet", "mnist7x7") == FAKE
        fresh = cross_architecture.builder("taylornet", "mnist7x7")((7, 7, 1), 3, 0)
        assert fresh.output_shape == (None, 3)

        # The documentation tests now ask for it, and for nothing else.
        for path, header in TABLES.items():
            assert undocumented(path, header) == ({FAKE}, set()), path
    assert FAKE not in zoo.list()
    with pytest.raises(ValueError, match="no zoo model for dataset 'mnist7x7'"):
        cross_architecture.zoo_architecture("taylornet", "mnist7x7")


def test_cross_architecture_roles_are_checked_at_registration():
    with pytest.raises(ValueError, match="'digits_taylornet' is already the 'taylornet' "
                                         "architecture of dataset 'digits'"):
        zoo.register(FAKE, dataset="digits", recipe=zoo.TrainingRecipe(epochs=1),
                     cross_architecture_role="taylornet")(tiny_taylornet)
    with pytest.raises(ValueError, match="cross_architecture_role must be one of 'taylornet', "
                                         "'relu'; received 'vgg'"):
        zoo.register(FAKE, dataset="digits", recipe=zoo.TrainingRecipe(epochs=1),
                     cross_architecture_role="vgg")(tiny_taylornet)
    with pytest.raises(ValueError, match="cross_architecture_datasets needs a "
                                         "cross_architecture_role"):
        zoo.register(FAKE, dataset="digits", recipe=zoo.TrainingRecipe(epochs=1),
                     cross_architecture_datasets=("mnist",))(tiny_taylornet)
    assert FAKE not in zoo.list()


def test_registered_unregisters_when_the_block_fails():
    with pytest.raises(RuntimeError, match="inside"):
        with zoo.registered(FAKE, tiny_taylornet, **FAKE_REGISTRATION):
            raise RuntimeError("inside")
    assert FAKE not in zoo.list()
