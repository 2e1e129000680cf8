"""Modules renamed for clarity stay importable under their old names, with a warning."""
import subprocess
import sys

import pytest

ALIASES = {
    # old module: (new home of a name it held, that name)
    "tn_keras.distill.export": ("tn_keras.datasets.distilled_levels", "load_level"),
    "tn_keras.distill.formation": ("tn_keras.datasets.multi_formation", None),
}


@pytest.mark.parametrize("old", sorted(ALIASES))
def test_an_old_module_name_warns_and_gives_the_same_objects(old):
    new, name = ALIASES[old]
    check = (f"assert old.{name} is new.{name}" if name else
             "assert old.__all__ and all(getattr(old, n) is getattr(new, n) for n in old.__all__)")
    script = (
        "import importlib, warnings\n"
        "with warnings.catch_warnings(record=True) as caught:\n"
        "    warnings.simplefilter('always')\n"
        f"    old = importlib.import_module({old!r})\n"
        f"new = importlib.import_module({new!r})\n"
        "assert any(issubclass(w.category, DeprecationWarning) and "
        f"{old.rsplit('.', 1)[1]!r} in str(w.message) for w in caught), "
        "[str(w.message) for w in caught]\n"
        f"{check}\n")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]


# Config objects renamed so that every one ends in Config (docs/contributing.md, "Config
# objects"): (module the old name was importable from, old name, new name).
RENAMED_CONFIGS = [
    ("tn_keras.distill", "DistillSettings", "DistillConfig"),
    ("tn_keras.distill.config", "DistillSettings", "DistillConfig"),
    ("tn_keras.distill.algorithm", "DistillSettings", "DistillConfig"),
    ("tn_keras.distill.callback", "DistillSettings", "DistillConfig"),
    ("tn_keras.distill", "ExportOptions", "LevelExportConfig"),
    ("tn_keras.distill.config", "ExportOptions", "LevelExportConfig"),
    ("tn_keras.distill.algorithm", "ExportOptions", "LevelExportConfig"),
    ("tn_keras.distill.callback", "ExportOptions", "LevelExportConfig"),
    ("tn_keras.distill", "ScratchProtocol", "ScratchTrainingConfig"),
    ("tn_keras.distill.evaluation", "ScratchProtocol", "ScratchTrainingConfig"),
    ("tn_keras.datasets", "PipelineOptions", "PipelineConfig"),
    ("tn_keras.datasets.pipeline", "PipelineOptions", "PipelineConfig"),
    ("tn_keras.datasets.pipeline_options", "PipelineOptions", "PipelineConfig"),
]


@pytest.mark.parametrize("module, old, new", RENAMED_CONFIGS)
def test_an_old_config_name_warns_and_is_the_new_class(module, old, new):
    import importlib

    mod = importlib.import_module(module)
    with pytest.warns(DeprecationWarning, match=rf"{old} is deprecated; use {new}"):
        alias = getattr(mod, old)
    assert alias is getattr(mod, new)
    assert isinstance(getattr(mod, new)(), alias)
    assert old not in getattr(mod, "__all__", ())
    with pytest.warns(DeprecationWarning):  # `from module import Old` goes the same way
        exec(f"from {module} import {old} as imported", {})


def test_every_config_object_ends_in_config():
    import dataclasses

    from tn_keras import datasets, distill, export, figures, training

    configs = [training.TrainConfig, export.ExportConfig, figures.FiguresConfig,
               distill.DistillConfig, distill.LevelExportConfig, distill.ScratchTrainingConfig,
               datasets.PipelineConfig]
    for config in configs:
        assert config.__name__.endswith("Config") and dataclasses.is_dataclass(config)
        assert "__post_init__" in vars(config), f"{config.__name__} is not checked when made"
