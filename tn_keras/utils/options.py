"""Config objects with keyword overrides: ``f(..., config=None, **keywords)``.

Entry points such as `tn_keras.training.train`, `tn_keras.datasets.make_dataset`,
`tn_keras.export.export`, `tn_keras.distill.distill` and `tn_keras.figures.make_figures` take
a frozen dataclass of their choices (a ``...Config``, validated when made) and still accept
each field as a keyword argument (older code calls them that way). This module is the one rule
for combining the two:

- `with_keywords`: keywords replace the object's fields; a keyword that names no field is a
  TypeError listing the fields, as Python itself reports an unexpected keyword argument; old
  keyword names (``renamed``) still work, with a DeprecationWarning.
- `split_keywords`: for an entry point that takes two config objects (`distill`: the algorithm
  and where the levels are written), which keywords go to which.
- `deprecated_aliases`: a module's old class names, kept importable (the alias *is* the new
  class) with a DeprecationWarning, through the module's ``__getattr__``.
"""
from __future__ import annotations

import dataclasses
import warnings
from typing import Mapping, Optional, Sequence


def _field_names(config_type) -> list:
    return [f.name for f in dataclasses.fields(config_type)]


def _renamed_keywords(keywords: dict, renamed: Optional[Mapping[str, str]], caller: str,
                      warn: bool, stacklevel: int) -> dict:
    """``keywords`` with the old names of ``renamed`` (``{old: new}``) replaced, warning."""
    if not renamed or not set(keywords) & set(renamed):
        return dict(keywords)
    out = {}
    for key, value in keywords.items():
        name = renamed.get(key, key)
        if name != key and warn:
            warnings.warn(f"{caller}({key}=...) is deprecated; pass {name}=... instead.",
                          DeprecationWarning, stacklevel=stacklevel)
        if name != key and name in keywords:
            raise TypeError(f"{caller}() got both {key}= and {name}=.")
        out[name] = value
    return out


def with_keywords(config, config_type, keywords: dict, caller: str, *,
                  renamed: Optional[Mapping[str, str]] = None, warn_renamed: bool = True,
                  stacklevel: int = 3):
    """``config`` (None: a ``config_type`` of the keywords alone) with the fields named in
    ``keywords`` replaced. The result is built by the dataclass, so it is validated.

    ``renamed`` maps old keyword names to fields (``{"source": "model_name"}``): they still
    work, with a DeprecationWarning unless ``warn_renamed`` is False (``stacklevel``: the
    caller of the entry point, by default), and passing both names is a TypeError.

    Raises:
        TypeError: ``config`` is not a ``config_type``, or a keyword names no field.
        ValueError: a bad field value (from the config's own validation).
    """
    if config is not None and not isinstance(config, config_type):
        raise TypeError(f"{caller}() takes a {config_type.__name__} as its config; got "
                        f"{config!r} ({type(config).__name__}). Pass the other arguments by "
                        "keyword.")
    fields = _field_names(config_type)
    unknown = sorted(set(keywords) - set(fields) - set(renamed or ()))
    if unknown:
        raise TypeError(f"{caller}() got an unexpected keyword argument {unknown[0]!r}; known: "
                        f"{', '.join(sorted(fields))}.")
    keywords = _renamed_keywords(keywords, renamed, caller, warn_renamed, stacklevel + 1)
    if config is None:
        return config_type(**keywords)
    return dataclasses.replace(config, **keywords) if keywords else config


def split_keywords(keywords: dict, config_types: Sequence[type], caller: str, *,
                   renamed: Optional[Mapping[str, str]] = None) -> tuple:
    """``keywords`` split into one dict per type of ``config_types`` (by field name; a name
    goes to the first type that has it), each to pass to `with_keywords` with that type.
    Old names in ``renamed`` are translated by `with_keywords`, so they stay in the dict of the
    type that has the new name.

    Raises:
        TypeError: a keyword names no field of any of the types (the message lists them all).
    """
    parts = tuple({} for _ in config_types)
    field_sets = [set(_field_names(t)) for t in config_types]
    for key, value in keywords.items():
        name = (renamed or {}).get(key, key)
        for part, fields in zip(parts, field_sets):
            if name in fields:
                part[key] = value
                break
        else:
            known = sorted(set().union(*field_sets) | set(renamed or ()))
            raise TypeError(f"{caller}() got an unexpected keyword argument {key!r}; known: "
                            f"{', '.join(known)}.")
    return parts


def deprecated_aliases(module_name: str, aliases: Mapping[str, tuple]):
    """A module ``__getattr__`` for old names: ``aliases`` maps an old name to ``(the new
    name, the object)``; looking an old name up warns (DeprecationWarning) and returns the
    object itself, so ``isinstance(x, Old)`` and ``Old is New`` hold."""

    def __getattr__(name):
        if name in aliases:
            new_name, value = aliases[name]
            warnings.warn(f"{module_name}.{name} is deprecated; use {new_name} (the same "
                          "class, renamed so that every config object ends in Config).",
                          DeprecationWarning, stacklevel=2)
            return value
        raise AttributeError(f"module {module_name!r} has no attribute {name!r}")

    return __getattr__
