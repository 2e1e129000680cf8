"""Wall-clock budgets as people write them: ``150m``, ``2h``, ``90s`` or seconds.

Standard library only: the config modules of training and distillation, which stay cheap to
import, read it.
"""
import math
import re

_DURATION_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text) -> float:
    """Seconds in ``"150m"``, ``"2h"``, ``"90s"`` or ``"3600"`` (seconds); ValueError naming
    ``time_budget`` (the field every caller calls it) otherwise."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d*)?)\s*([smh]?)\s*", str(text))
    seconds = (float(match.group(1)) * _DURATION_UNITS[match.group(2) or "s"] if match
               else math.nan)
    if isinstance(text, bool) or not (0 < seconds < math.inf):
        raise ValueError(f"time_budget must be a positive duration such as 150m, 2h, 90s or "
                         f"3600 (seconds); received {text!r}.")
    return seconds
