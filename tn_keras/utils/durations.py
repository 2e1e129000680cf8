"""Wall-clock budgets as people write them: ``150m``, ``2h``, ``2h20m``, ``90s`` or seconds.

Standard library only: the config modules of training and distillation, which stay cheap to
import, read it.
"""
import math
import re

_DURATION_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0}
_NUMBER = r"(\d+(?:\.\d*)?)"
# Hours, minutes, seconds, each with its unit, at most once and in that order ("2h20m",
# "1m30s"); a bare number alone is seconds ("2h30" is refused: 30 what?).
_BARE = re.compile(rf"\s*{_NUMBER}\s*")
_DURATION = re.compile(rf"\s*(?:{_NUMBER}\s*h)?\s*(?:{_NUMBER}\s*m)?\s*(?:{_NUMBER}\s*s)?\s*")


def parse_duration(text) -> float:
    """Seconds in ``"150m"``, ``"2h"``, ``"2h20m"``, ``"90s"`` or ``"3600"`` (seconds);
    ValueError naming ``time_budget`` (the field every caller calls it) otherwise."""
    bare = _BARE.fullmatch(str(text))
    match = _DURATION.fullmatch(str(text))
    parts = (None, None, bare.group(1)) if bare else match.groups() if match else ()
    seconds = (sum(float(value) * _DURATION_UNITS[unit]
                   for value, unit in zip(parts, "hms") if value is not None)
               if any(value is not None for value in parts) else math.nan)
    if isinstance(text, bool) or not (0 < seconds < math.inf):
        raise ValueError(f"time_budget must be a positive duration such as 150m, 2h, 2h20m, 90s or "
                         f"3600 (seconds); received {text!r}.")
    return seconds
