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
