"""Argument types and checks shared by the sub-commands: bad values are refused before any work.

The ``type=`` functions raise ``argparse.ArgumentTypeError``, which argparse turns into one line
naming the flag (``argument --epochs: expected an integer >= 1, received '0'``).
"""
import argparse
import json
import math


def _integer(text):
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, received {text!r}") from None


def positive_int(text):
    """An integer >= 1 (``--epochs``, ``--batch-size``, ``--top-k``, counts of images)."""
    value = _integer(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, received {text!r}")
    return value


def non_negative_int(text):
    """An integer >= 0 (``--seed``)."""
    value = _integer(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, received {text!r}")
    return value


def positive_float(text):
    """A finite number > 0 (``--learning-rate``)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, received {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"expected a finite number > 0, received {text!r}")
    return value


def non_negative_float(text):
    """A finite number >= 0 (``--ce-weight``)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, received {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"expected a finite number >= 0, received {text!r}")
    return value


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
