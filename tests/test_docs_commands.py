"""The commands in the README and docs/ run as written.

Every ``tn-keras`` command in a fenced ``bash`` block or an indented code line is extracted.
Each must parse with the CLI's own parser (so a renamed flag or a removed choice fails here).
The fast ones (listing, info, model cards, a digits evaluation, an ONNX export) run for real in
the suite; the slower ones (an int8 export and its evaluation, the figures) behind ``slow``.
The rest train or distil for minutes to hours: they are parse-checked only; their figures come
from the runs the docs cite.
"""
import glob
import os
import re
import shlex

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCS = [os.path.join(ROOT, "README.md"), os.path.join(ROOT, "gpu", "README.md"),
        *sorted(glob.glob(os.path.join(ROOT, "docs", "*.md")))]

# Run in the suite: each takes seconds.
FAST = [
    "tn-keras list --table",
    "tn-keras info mnist7_taylor",
    "tn-keras card cifar_taylornet",
    "tn-keras evaluate digits_taylornet",
    "tn-keras export digits_taylornet --format onnx --out digits.onnx",
]
# Run behind the slow marker, in this order (the evaluation reads the export).
SLOW = [
    "tn-keras export digits_taylornet --format tflite_int8 --out digits_int8.tflite",
    "tn-keras evaluate digits_taylornet --tflite digits_int8.tflite",
    "tn-keras figures --out figures/",
]
# A word in capitals (NAME, DIR, E), an optional [--flag] or "..." marks a template.
PLACEHOLDER = re.compile(r"^[A-Z][A-Z0-9_]*$|\[|^\.\.\.$")


def _code_lines(text):
    """Lines of fenced bash blocks and of indented code, with continuations joined."""
    lines, fenced = [], False
    for line in text.splitlines():
        if line.startswith("```"):
            fenced = line.strip().startswith("```bash") and not fenced
            continue
        if fenced or line.startswith("    "):
            lines.append(line.strip())
    joined, current = [], ""
    for line in lines:
        current += line[:-1] + " " if line.endswith("\\") else line
        if not line.endswith("\\"):
            joined.append(current)
            current = ""
    return joined


def _commands(line):
    """The ``tn-keras`` commands of one shell line: comments dropped, ``;`` / ``&&`` split,
    leading ``VAR=value`` assignments removed."""
    line = line.split(" #", 1)[0]
    for part in re.split(r";|&&", line):
        words = part.split()
        while words and re.match(r"^[A-Z_]+=", words[0]):
            words = words[1:]
        # "tn-keras data: error: ..." is output shown in the docs, not a command.
        if words[:1] == ["tn-keras"] and not (len(words) > 1 and words[1].endswith(":")):
            yield " ".join(words)


def documented_commands():
    found = {}
    for path in DOCS:
        with open(path, encoding="utf-8") as f:
            for line in _code_lines(f.read()):
                for command in _commands(line):
                    found.setdefault(command, os.path.relpath(path, ROOT))
    return found


COMMANDS = documented_commands()


def test_the_docs_hold_commands_and_the_run_lists_are_still_documented():
    assert len(COMMANDS) >= 20
    missing = [c for c in FAST + SLOW if c not in COMMANDS]
    assert not missing, f"no longer in the docs: {missing}"


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_command_parses(command):
    from tn_keras.cli import build_parser

    argv = shlex.split(command)[1:]
    if any(PLACEHOLDER.search(word) for word in argv):
        pytest.skip(f"a template ({COMMANDS[command]}): {command}")
    try:
        build_parser().parse_args(argv)
    except SystemExit as e:
        pytest.fail(f"{COMMANDS[command]}: `{command}` does not parse (exit {e.code})")


def _run(command, cwd):
    from tn_keras.cli import main

    previous = os.getcwd()
    os.chdir(cwd)
    try:
        return main(shlex.split(command)[1:])
    finally:
        os.chdir(previous)


@pytest.mark.parametrize("command", FAST)
def test_fast_command_runs(command, tmp_path, capsys):
    assert _run(command, tmp_path) == 0, capsys.readouterr().err


@pytest.mark.slow
def test_slow_commands_run_in_order(tmp_path, capsys):
    for command in SLOW:
        assert _run(command, tmp_path) == 0, (command, capsys.readouterr().err)
    assert os.path.isfile(tmp_path / "figures" / "index.html")
