"""Durations as users write them: a number of seconds, or "90s", "5m", "1h30m", "2d".

Every duration is finite, not negative and at most MAX_DURATION; fields where zero makes
no sense use `PositiveDuration` (see core/spec.py).

Hand-written on purpose: pytimeparse, the well-kept parser closest to this syntax, also
reads "1:30" as 90 seconds (a trap in files where "09:00" is a time of day), accepts
negative durations, and reads no bare number; cut down to this syntax it would be this
regular expression again.
"""

from __future__ import annotations

import math
import re

from .limits import MAX_DURATION

_UNIT_SECONDS = {"d": 86_400, "h": 3_600, "m": 60, "s": 1}
_DURATION = re.compile(r"(?:(\d+(?:\.\d+)?)([dhms]))+")
_PART = re.compile(r"(\d+(?:\.\d+)?)([dhms])")


def _shown(value: object) -> str:
    text = repr(value) if not isinstance(value, int) or abs(value) < 10**40 else "a huge number"
    return text if len(text) <= 40 else type(value).__name__


def _invalid(value: object) -> ValueError:
    return ValueError(
        f'expected a duration such as 90, "90s", "5m" or "1h30m", got {_shown(value)}'
    )


def parse_duration(value: object) -> float:
    """Seconds as a float; raises ValueError with a readable message otherwise."""
    if isinstance(value, bool):
        raise _invalid(value)
    if isinstance(value, int):
        return _checked(float(value) if abs(value) < 10**300 else math.inf * value, value)
    if isinstance(value, float):
        return _checked(value, value)
    if isinstance(value, str) and len(value) <= 100:
        text = value.strip().replace(" ", "")
        if re.fullmatch(r"\d+(\.\d+)?", text):
            return _checked(float(text), value)
        if _DURATION.fullmatch(text):
            parts = _PART.findall(text)
            units = [unit for _, unit in parts]
            if len(units) == len(set(units)) and units == sorted(units, key="dhms".index):
                seconds = sum(float(amount) * _UNIT_SECONDS[unit] for amount, unit in parts)
                return _checked(float(seconds), value)
    raise _invalid(value)


def _checked(seconds: float, value: object) -> float:
    """Finite, not negative, at most MAX_DURATION."""
    if math.isnan(seconds):
        raise ValueError(f"a duration must be a number of seconds, got {_shown(value)}")
    if seconds < 0:
        raise ValueError(f"a duration cannot be negative, got {_shown(value)}")
    if seconds > MAX_DURATION:
        raise ValueError(
            f"a duration may be at most {MAX_DURATION:.0f} seconds (100 years), got {_shown(value)}"
        )
    return seconds
