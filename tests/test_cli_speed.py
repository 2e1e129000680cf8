"""The quick commands (``tn-keras --help``, ``--version``, ``list``, ``status``, ``info``,
``card`` of a shipped checkpoint) import neither Keras nor
TensorFlow, so they answer in a fraction of a second instead of the seconds those imports take.

Checked in a child process where importing ``keras`` or ``tensorflow`` raises: if any quick
path still needs them, the command fails. Timings vary with the machine, so none is asserted;
docs/zoo.md gives the measured figures and the command that measures them.
"""
import os
import subprocess
import sys
import textwrap

from tn_keras import zoo
from tn_keras.zoo import api

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Runs first in the child: a finder that refuses keras and tensorflow (and their sub-modules).
_BLOCK = textwrap.dedent(
    """
    import importlib.abc
    import sys

    class _Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("keras", "tensorflow"):
                raise ModuleNotFoundError(f"{name} is blocked by the test", name=name)
            return None

    sys.meta_path.insert(0, _Block())
    import tn_keras_cli
    """
)


def _run_quick(*argv_lists):
    """Run ``tn_keras_cli.main`` once per argv in one child process; returns its stdout lines
    as ``[exit code, output]`` per run (each run prints a ``==> CODE`` line after itself)."""
    code = _BLOCK + "".join(
        f"sys.argv = ['tn-keras', *{list(argv)!r}]\n"
        "try:\n    rc = tn_keras_cli.main()\nexcept SystemExit as e:\n    rc = e.code\n"
        "print('==>', rc, flush=True)\n" for argv in argv_lists)
    env = dict(os.environ, TN_KERAS_OFFLINE="1")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=ROOT, env=env, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    runs, lines = [], []
    for line in result.stdout.splitlines():
        if line.startswith("==> "):
            runs.append((int(line.split()[1]), lines))
            lines = []
        else:
            lines.append(line)
    return runs, result.stderr


def test_quick_commands_import_neither_keras_nor_tensorflow():
    runs, stderr = _run_quick(["--version"], ["--help"], ["train", "--help"], ["list"],
                              ["list", "--pretrained", "digits*"])
    (version, help_, train_help, names, digits) = runs
    assert version[0] == 0 and version[1][0].startswith("tn_keras ")
    assert help_[0] == 0 and help_[1][0].startswith("usage: tn-keras")
    assert train_help[0] == 0 and "--init-from" in "\n".join(train_help[1])
    assert names == (0, zoo.list())
    assert digits == (0, zoo.list("digits*", pretrained=True))
    assert "blocked" not in stderr


def test_status_imports_neither_keras_nor_tensorflow():
    """``tn-keras status`` reads manifests, backup states and lock files only."""
    shipped = zoo.find("digits_taylornet").folder
    runs, stderr = _run_quick(["status", shipped], ["status", "--json", shipped])
    (text, as_json) = runs
    assert text[0] == 0 and text[1][0].startswith(f"{shipped}: training run: finished: ")
    assert as_json[0] == 0 and '"state": "finished"' in "\n".join(as_json[1])
    assert "blocked" not in stderr


def test_the_source_catalogue_is_the_registry():
    """What ``tn-keras list`` reads from the source equals what importing the zoo registers."""
    assert api.list_builtin() == zoo.list()
    assert api.list_builtin("cifar*", pretrained=True) == zoo.list("cifar*", pretrained=True)
    assert api.list_builtin(pretrained=False) == zoo.list(pretrained=False)


def test_the_catalogue_is_the_registry():
    """``catalogue.json`` (what ``tn-keras info`` and ``card`` read without Keras) equals the
    live registry's data, and so does every record built from it. Regenerate it with
    ``python -m tn_keras.zoo.catalogue``."""
    import json

    from tn_keras.zoo import catalogue

    assert catalogue.read() == json.loads(json.dumps(catalogue.records())), (
        "zoo/catalogue.json is stale: run python -m tn_keras.zoo.catalogue")
    for name in zoo.list() + zoo.list(pretrained=True):
        assert api.info_builtin(name) == zoo.info(name), name


def test_info_and_card_import_neither_keras_nor_tensorflow(capsys):
    """``tn-keras info`` and the card of a shipped checkpoint answer from files; what they
    print equals the full commands' output (the zoo loaded, the card rendered)."""
    import json

    from tn_keras.cli import main
    from tn_keras.zoo import cards

    runs, stderr = _run_quick(["info", "cifar_taylornet"], ["card", "digits_taylornet"],
                              ["info", "nope"])
    (info, card, unknown) = runs
    assert "blocked" not in stderr
    assert main(["info", "cifar_taylornet"]) == 0
    assert info[0] == 0 and json.loads("\n".join(info[1])) == json.loads(
        capsys.readouterr().out)
    rendered = cards.render(zoo.find("digits_taylornet").manifest)
    assert card[0] == 0 and "\n".join(card[1]) == rendered.rstrip("\n")
    assert unknown[0] == 2 and "Unknown model name 'nope'" in stderr
    # Not quick: a check, another folder, a name without a shipped card.
    import tn_keras_cli

    assert tn_keras_cli.is_quick(["card", "digits_taylornet"])
    for argv in (["card", "digits_taylornet", "--check"],
                 ["card", "digits_taylornet", "--weights", "x"],
                 ["card", "cifar_taylornet_res"], ["card", "nope"]):
        assert not tn_keras_cli.is_quick(argv), argv


def test_list_with_the_zoo_loaded_includes_user_registrations(capsys):
    import keras

    from tn_keras.cli import main

    @zoo.register("test_speed_user_model", dataset="digits",
                  recipe=zoo.TrainingRecipe(epochs=1))
    def user_model(input_shape=(8, 8, 1), num_classes=10, name="user"):
        """Registered, never built: `list` only reads the registry."""
        return keras.Sequential([keras.Input(input_shape), keras.layers.Dense(num_classes)])

    try:
        assert main(["list", "test_speed*"]) == 0
        assert capsys.readouterr().out.split() == ["test_speed_user_model"]
    finally:
        zoo.unregister("test_speed_user_model")


def test_training_progress_is_plain_when_redirected(tmp_path):
    """Redirected to a file, ``tn-keras train`` prints one plain line per epoch: no carriage
    return, backspace or ANSI escape code from the terminal progress bar."""
    import io

    from tn_keras.cli import train_command

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    assert train_command.progress_verbosity(Terminal()) == "auto"
    assert train_command.progress_verbosity(io.StringIO()) == 2
    log = tmp_path / "train.log"
    with open(log, "w") as out:
        result = subprocess.run(
            [sys.executable, "-c", "import sys, tn_keras_cli; sys.exit(tn_keras_cli.main())",
             "train", "digits_taylornet", "--epochs", "2", "--max-train-examples", "64",
             "--max-eval-examples", "20", "--out", str(tmp_path / "run")],
            stdout=out, stderr=subprocess.PIPE, text=True, cwd=ROOT, timeout=600,
            env=dict(os.environ, TN_KERAS_OFFLINE="1", TN_KERAS_HOME=str(tmp_path)))
    assert result.returncode == 0, result.stderr[-3000:]
    text = log.read_text()
    assert "Epoch 2/2" in text and not any(c in text for c in "\x1b\r\b"), text[:2000]


def test_a_quick_check_in_a_loaded_process_leaves_the_real_package():
    """`tn_keras_cli.is_quick` reads a shipped card's path under light imports; in a process
    that has loaded tn_keras already (a test, a notebook), the real modules stay in place."""
    import tn_keras_cli

    before = {name: sys.modules[name] for name in ("tn_keras", "tn_keras.zoo")}
    assert tn_keras_cli.is_quick(["card", "digits_taylornet"])
    assert all(sys.modules[name] is module for name, module in before.items())
    assert sys.modules["tn_keras"].zoo is before["tn_keras.zoo"]
    assert hasattr(sys.modules["tn_keras.zoo"], "list_models")
