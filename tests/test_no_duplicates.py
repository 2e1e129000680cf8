"""No two places in the tree share six or more statements of the same logic (issue #16).

The detector is tests/_duplicate_code.py (its docstring gives the rules: logical lines,
identifiers renamed, data tables left out). It is tested here on small synthetic sources first,
then run over the project's Python code.
"""
import os
import textwrap

import pytest

import _duplicate_code as dup

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCANNED = ("tn_keras", "zoo", "tn_keras_cli.py", "benchmarks", "gpu", "tests")

# Duplicates inside files that another branch is rewriting at the same time, so that folding
# them here would collide with that work: (file, file) -> why, and who folds it. An entry the
# detector no longer finds fails the test, so the list cannot outlive the duplicates.
PENDING = {}


def _find(**sources):
    return dup.find_duplicates({f"{name}.py": textwrap.dedent(text)
                                for name, text in sources.items()})


MEAN_OF_SQUARES = """
    def mean_of_squares(values):
        total = 0.0
        for v in values:
            total += v * v
        count = len(values)
        return total / count
"""
# The same six statements with other names, numbers, comments, a docstring and layout.
ENERGY = '''
    import math


    def energy(samples):
        """Mean energy."""
        acc = 1.5  # a different start is still the same logic

        for s in samples:
            acc += s * s
        n = len(
            samples)
        return acc / n
'''


def test_finds_a_renamed_six_statement_copy_and_names_both_places():
    (found,) = _find(a=MEAN_OF_SQUARES, b=ENERGY)
    assert found.lines == 6
    assert (found.a, found.b) == (dup.Place("a.py", 2, 7), dup.Place("b.py", 5, 13))
    assert dup.describe(found) == "6 statements: a.py:2-7 ~ b.py:5-13"


def test_finds_a_copy_inside_one_file():
    (found,) = _find(a=MEAN_OF_SQUARES + ENERGY.replace("import math", ""))
    assert found.a.path == found.b.path == "a.py" and found.a.first < found.b.first


def test_ignores_five_shared_statements():
    five = MEAN_OF_SQUARES.replace("count = len(values)\n", "").replace("/ count", "/ len(values)")
    assert len(dup.logical_lines(textwrap.dedent(five))) == 5
    assert _find(a=five, b=five) == []


def test_a_scripts_main_guard_is_not_logic():
    tail = """
        report = measure()
        report["host"] = host()
        print(report)
        save(report)
        if __name__ == "__main__":
            main()
    """
    assert len(dup.logical_lines(textwrap.dedent(tail))) == 5  # six with the guard
    assert _find(a=tail, b=tail) == []


def test_a_declaration_that_computes_is_still_logic():
    # `name: type = call()` computes a value: a run of them with logic around is compared.
    body = "x: int = f(a)\ny: int = g(x)\nz = x + y\nif z:\n    w = h(z)\nreturn w\n"
    source = "def k(a):\n" + textwrap.indent(body, "    ")
    assert len(_find(a=source, b=source.replace("k(a)", "m(a)"))) == 1


def test_a_different_flow_of_values_is_not_a_copy():
    # `acc += s * n` uses another value than `total += v * v`: not the same logic.
    other = ENERGY.replace("acc += s * s", "acc += s * n")
    assert _find(a=MEAN_OF_SQUARES, b=other) == []
    assert _find(a=MEAN_OF_SQUARES, b=ENERGY.replace("acc / n", "acc * n")) == []


@pytest.mark.parametrize("table", [
    # One literal: a single logical line, however many rows.
    "CASES = {\n" + "".join(f"    'case{i}': ({i}, 'x{i}', lambda d: d / 'f{i}'),\n"
                             for i in range(12)) + "}\n",
    # Rows of one form written as statements, with an odd row: a table, not logic.
    "".join(f"register('model{i}', width={i}, depth={i + 1})\n" for i in range(4))
    + "register('odd', width=1, depth=2, tag=DEFAULT_TAG)\nDEFAULT = registry['model0']\n",
    "class Options:\n" + "".join(f"    field{i}: int = {i}\n" for i in range(7)),
    # Declarations only: a constant, then a dataclass with three plain fields.
    "KIND = 'k'\n\n@dataclasses.dataclass(frozen=True)\nclass Info:\n    name: str\n"
    "    size: int\n    items: tuple = ()\n    note: str = None\n",
])
def test_ignores_data_tables(table):
    assert _find(a=table, b=table.replace("1", "7")) == []


def test_the_tree_has_no_duplicated_logic():
    found = dup.find_duplicates(dup.python_files(ROOT, SCANNED))
    new = [d for d in found if (d.a.path, d.b.path) not in PENDING]
    assert not new, ("the same logic stands in two places; make it one function (or parametrise "
                     "a test):\n" + "\n".join(dup.describe(d) for d in new))
    stale = set(PENDING) - {(d.a.path, d.b.path) for d in found}
    assert not stale, f"PENDING names duplicates that are gone; remove them: {sorted(stale)}"
