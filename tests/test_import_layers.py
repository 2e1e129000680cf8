"""No module imports from a package above its own (issue 26).

tn_keras is built in layers: `utils` knows nothing of models, `layers` nothing of datasets, the
zoo nothing of training, and so on up to the CLI, which may use everything. An import that runs
the other way (a lower package reaching up) makes the lower one impossible to use, test or
reason about alone, and is how import cycles start. This test reads every module's imports
with `ast` (nothing is imported), at module level and inside functions alike, and names each
import that runs upwards, or sideways between two packages of one level.

The order is data, below: `LAYERS`, lowest first. Packages on one level are independent of
each other (neither imports the other). ``tn_keras/__init__.py`` is exempt as an importer: the
top-level package re-exports and lazily loads every sub-package. Only import statements are
read: ``importlib.import_module`` calls are not (today they all load modules of their own
package, or third-party ones).
"""
import os
import subprocess
import sys
import textwrap

import pytest

from _imports import ROOT
from _imports import imported_modules
from _imports import python_files

# Lowest first. Each entry is one level: a sub-package, or a module directly under tn_keras/,
# of tn_keras; "tn_keras" stands for the top-level package itself (``import tn_keras``, or a
# name it defines such as ``__version__``; it eagerly loads only version, utils, layers,
# zoo_model and training's optimisers and losses: see `test_import_tn_keras_stays_light`).
LAYERS = (
    ("version",),
    ("utils",),
    ("artifacts",),  # the one manifest format; reads software versions from utils
    ("layers", "zoo_model"),  # zoo_model: the functional model class zoo.load returns
    ("tn_keras",),
    ("datasets",),  # loaders, and the reading of distilled level folders
    ("interpret",),
    ("zoo",),  # architectures and checkpoints, described with interpret's measures
    ("export", "training", "distill"),  # three independent users of zoo models
    ("figures", "status"),
    ("cli",),
)

# Imports that run upwards today and are not fixed yet: (file, imported name) -> why. An
# entry that no longer occurs fails the test, so the list cannot outlive the imports.
KNOWN_EXCEPTIONS = {
    ("tn_keras/interpret/points.py", "tn_keras.zoo.registry.get_spec"):
        "about='mean' (the default of every interpret function) finds a zoo model's training "
        "images from its registered name when data= is not given; removing the lookup means "
        "the callers (figures, zoo.readability, the CLI) pass the dataset, a change of the "
        "public interpret API left to its own issue.",
}


def level_of(unit):
    for level, units in enumerate(LAYERS):
        if unit in units:
            return level
    return None


def unit(module):
    """The level's unit a dotted name belongs to: the sub-package or top-level module of
    tn_keras it names, "tn_keras" for the package itself, None outside tn_keras."""
    parts = module.split(".")
    if parts[0] != "tn_keras":
        return None
    if len(parts) == 1:
        return "tn_keras"
    name = parts[1]
    if name == "zoo" or os.path.isdir(os.path.join(ROOT, "tn_keras", name)) \
            or os.path.isfile(os.path.join(ROOT, "tn_keras", f"{name}.py")):
        return name
    return "tn_keras"  # a name defined by tn_keras/__init__.py (``from tn_keras import X``)


def upward_imports():
    """``{(file, imported module): description}`` of every import against `LAYERS`."""
    found = {}
    for path, module, is_init in python_files():
        if path == "tn_keras/__init__.py":
            continue  # the top-level package re-exports every sub-package
        importer = unit(module)
        with open(os.path.join(ROOT, path), encoding="utf-8") as f:
            source = f.read()
        for line, imported in imported_modules(source, module, is_init):
            target = unit(imported)
            if target is None or target == importer:
                continue
            low, high = level_of(target), level_of(importer)
            if low is None or high is None:
                unknown = target if low is None else importer
                found[(path, imported)] = (f"{path}:{line} imports {imported}: {unknown!r} is "
                                           "not in LAYERS; add it at its level")
            elif low >= high:
                direction = "on its own level" if low == high else "from a higher level"
                found[(path, imported)] = (f"{path}:{line} ({importer}) imports {imported} "
                                           f"({target}), {direction}")
    return found


def test_the_reader_sees_nested_and_relative_imports():
    source = ("import os\n"
              "from . import sibling\n"
              "from ..zoo import registry\n"
              "def lazy():\n"
              "    from tn_keras.distill import level_files\n")
    found = list(imported_modules(source, "tn_keras.export.calibration", is_init=False))
    assert found == [(1, "os"), (2, "tn_keras.export.sibling"), (3, "tn_keras.zoo.registry"),
                     (5, "tn_keras.distill.level_files")]
    assert [unit(name) for _, name in found] == [None, "export", "zoo", "distill"]
    assert unit("tn_keras.__version__") == "tn_keras"


def test_every_package_has_a_level():
    units = {unit(module) for _, module, _ in python_files()}
    missing = sorted(u for u in units if level_of(u) is None)
    assert not missing, f"add these packages to LAYERS at their level: {missing}"
    listed = [u for level in LAYERS for u in level]
    assert len(listed) == len(set(listed)), "a package is on two levels of LAYERS"


def test_no_import_runs_up_the_layers():
    found = upward_imports()
    new = [found[key] for key in sorted(found) if key not in KNOWN_EXCEPTIONS]
    assert not new, ("imports from a lower package to a higher one (LAYERS, lowest first: "
                     f"{LAYERS}):\n  " + "\n  ".join(new))
    stale = sorted(set(KNOWN_EXCEPTIONS) - set(found))
    assert not stale, f"KNOWN_EXCEPTIONS names imports that are gone; remove them: {stale}"


@pytest.mark.parametrize("importer, imported", [
    ("tn_keras/export/calibration.py", "tn_keras.distill.export.load_level"),
    ("tn_keras/utils/files.py", "tn_keras.layers.PolyCG"),
    ("tn_keras/training/trainer.py", "tn_keras.distill.algorithm"),
])
def test_the_order_refuses_what_issue_26_removed(importer, imported):
    """The import this test was written against (export reading levels through distill), and
    two others that the order forbids."""
    module = importer[:-3].replace("/", ".")
    low, high = level_of(unit(imported)), level_of(unit(module))
    assert low >= high


def test_import_tn_keras_stays_light_and_training_names_stay_functions():
    """``import tn_keras`` registers what checkpoints name (layers, ZooModel, the fast
    recipe's optimiser, schedule and loss) and nothing of datasets, zoo or the trainer; and
    `tn_keras.training.evaluate` stays the function after the trainer has been imported."""
    script = textwrap.dedent("""
        import sys
        import tn_keras
        loaded = sorted(m for m in sys.modules if m.startswith("tn_keras."))
        heavy = [m for m in loaded if m.split(".")[1] in ("datasets", "zoo", "distill", "export")
                 or m == "tn_keras.training.trainer"]
        assert not heavy, heavy
        import keras
        assert keras.saving.get_registered_object("tn_keras>ScaledSGD") is not None
        from tn_keras.training import trainer  # imports the evaluation module
        from tn_keras import training
        assert callable(training.evaluate) and callable(training.train), training.evaluate
        print("light")
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"), timeout=300)
    assert result.returncode == 0 and "light" in result.stdout, result.stderr[-3000:]
