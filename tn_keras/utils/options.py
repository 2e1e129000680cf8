"""Config objects with keyword overrides: ``f(..., config=None, **keywords)``.

Entry points such as `tn_keras.training.train` and `tn_keras.datasets.make_dataset` take a
frozen dataclass of their choices and still accept each field as a keyword argument (older
code calls them that way). `with_keywords` is the one rule for combining the two: keywords
replace the object's fields, and a keyword that names no field is a TypeError listing the
fields, as Python itself reports an unexpected keyword argument.
"""
from __future__ import annotations

import dataclasses


def with_keywords(config, config_type, keywords: dict, caller: str):
    """``config`` (None: ``config_type()``) with the fields named in ``keywords`` replaced.

    Raises:
        TypeError: ``config`` is not a ``config_type``, or a keyword names no field.
    """
    if config is None:
        config = config_type()
    elif not isinstance(config, config_type):
        raise TypeError(f"{caller}() takes a {config_type.__name__} as its config; got "
                        f"{config!r} ({type(config).__name__}). Pass the other arguments by "
                        "keyword.")
    fields = [f.name for f in dataclasses.fields(config_type)]
    unknown = sorted(set(keywords) - set(fields))
    if unknown:
        raise TypeError(f"{caller}() got an unexpected keyword argument {unknown[0]!r}; known: "
                        f"{', '.join(sorted(fields))}.")
    return dataclasses.replace(config, **keywords) if keywords else config
