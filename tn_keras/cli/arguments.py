"""Argument types and checks shared by the sub-commands: bad values are refused before any work.

The ``type=`` functions raise ``argparse.ArgumentTypeError``, which argparse turns into one line
naming the flag (``argument --epochs: expected an integer >= 1, received '0'``).
"""
import argparse
import errno
import json
import math
import os


def _integer(text):
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, received {text!r}") from None


def _number(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, received {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, received {text!r}")
    return value


def _bounded(parse, kind, bound, strict, doc):
    """An argparse ``type=``: ``parse`` the text, then require ``> bound`` (``strict``) or
    ``>= bound``; the error names the kind and the bound."""
    relation = ">" if strict else ">="

    def check(text):
        value = parse(text)
        if value < bound or (strict and value == bound):
            raise argparse.ArgumentTypeError(f"expected {kind} {relation} {bound}, "
                                             f"received {text!r}")
        return value

    check.__doc__ = doc
    return check


positive_int = _bounded(_integer, "an integer", 1, False,
                        "An integer >= 1 (``--epochs``, ``--batch-size``, ``--top-k``, counts).")


def output_path(text):
    """An argparse ``type=`` for ``--out``: any path but an empty one (``--out ''`` meant the
    working directory to the file functions, and an export replaced it)."""
    if not text.strip():
        raise argparse.ArgumentTypeError(f"expected a path to write, received {text!r}")
    return text


def positive_int_at_most(maximum, doc):
    """An argparse ``type=``: `positive_int`, and at most ``maximum`` (a count so large it
    can only be a typo: ``--steps 100000000000000000000`` ran until it was killed)."""

    def check(text):
        value = positive_int(text)
        if value > maximum:
            raise argparse.ArgumentTypeError(f"expected an integer from 1 to {maximum:,}, "
                                             f"received {text!r}")
        return value

    check.__doc__ = doc
    return check


non_negative_int = _bounded(_integer, "an integer", 0, False, "An integer >= 0 (``--seed``).")
positive_float = _bounded(_number, "a finite number", 0, True,
                          "A finite number > 0 (``--learning-rate``).")
non_negative_float = _bounded(_number, "a finite number", 0, False,
                              "A finite number >= 0 (``--ce-weight``).")


# Builder arguments that must be positive numbers (the channel multiplier).
POSITIVE_MODEL_KWARGS = ("width",)


def parse_model_kwargs(items):
    """``["width=2.0", "name=x"]`` -> ``{"width": 2.0, "name": "x"}`` (JSON, else a string).

    Raises:
        ValueError: an item that is not KEY=VALUE, a repeated key, or a ``width`` that is not a
            finite number > 0.
    """
    kwargs = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.isidentifier():
            raise ValueError(f"--model-kwargs expects KEY=VALUE pairs; received {item!r}.")
        if key in kwargs:
            raise ValueError(f"--model-kwargs: {key} is given twice.")
        try:
            kwargs[key] = json.loads(value)
        except json.JSONDecodeError:
            kwargs[key] = value
    for key in POSITIVE_MODEL_KWARGS:
        value = kwargs.get(key)
        if key in kwargs and (isinstance(value, bool) or not isinstance(value, (int, float))
                              or not math.isfinite(value) or value <= 0):
            raise ValueError(f"--model-kwargs {key}={value!r}: expected a finite number > 0.")
    return kwargs


def read_json_object(path, what, required=()):
    """The JSON object in ``path``, refusing anything a manifest cannot be.

    `tn_keras.artifacts.load_json` refuses, in one line naming ``path``: too large, not UTF-8,
    not JSON, nested too deeply. Refused here too: not a regular file, not an object (a list,
    a string, null), a ``required`` text entry missing, or a ``file`` entry that leaves the
    manifest's folder (`tn_keras.artifacts.check_inside`).
    """
    from tn_keras import artifacts
    from tn_keras.utils.files import check_regular_file

    check_regular_file(path, what)
    data = artifacts.load_json(path)
    if not isinstance(data, dict):
        raise ValueError(f"{path}: the {what} is a JSON {type(data).__name__}, expected an "
                         "object.")
    for key in required:
        if not isinstance(data.get(key), str):
            raise ValueError(f"{path}: the {what} has no {key!r} text entry.")
    if "file" in data:
        artifacts.check_inside(data["file"], path)
    return data


def checked_weights(weights):
    """``--weights``: ``pretrained``, ``none`` or a checkpoint folder / ``.keras`` file whose
    ``manifest.json`` is sound (checked before the model is built or loaded)."""
    if weights == "pretrained" or weights.lower() == "none":
        return weights
    if not os.path.lexists(weights):
        raise FileNotFoundError(errno.ENOENT, "no such checkpoint folder or file (--weights)",
                                weights)
    if not os.path.isdir(weights):
        from tn_keras.utils.files import check_regular_file

        check_regular_file(weights, "checkpoint file")
    folder = weights if os.path.isdir(weights) else os.path.dirname(os.path.abspath(weights))
    manifest = os.path.join(folder, "manifest.json")
    if os.path.lexists(manifest):
        read_json_object(manifest, "checkpoint manifest", required=("name", "file", "sha256"))
    return weights


def load_checkpoint(name, weights):
    """`tn_keras.zoo.load` with ``--weights`` checked first; a checkpoint that Keras cannot
    deserialise is reported as one line naming it."""
    from tn_keras import zoo

    checked_weights(weights)
    try:
        return zoo.load(name, weights=weights, compile=False)
    except Exception as e:  # noqa: BLE001  (Keras deserialisation raises many types)
        if weights == "pretrained" or os.path.basename(os.path.normpath(weights)) in str(e):
            raise  # the message names the checkpoint already
        raise ValueError(f"--weights {weights}: cannot load the checkpoint of {name} "
                         f"({type(e).__name__}: {e}).") from e
