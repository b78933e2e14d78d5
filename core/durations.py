"""Durations as users write them: a number of seconds, or "90s", "5m", "1h30m", "2d".

Hand-written on purpose: pytimeparse, the well-kept parser closest to this syntax, also
reads "1:30" as 90 seconds (a trap in files where "09:00" is a time of day), accepts
negative durations, and reads no bare number; cut down to this syntax it would be this
regular expression again.
"""

from __future__ import annotations

import re

_UNIT_SECONDS = {"d": 86_400, "h": 3_600, "m": 60, "s": 1}
_DURATION = re.compile(r"(?:(\d+(?:\.\d+)?)([dhms]))+")
_PART = re.compile(r"(\d+(?:\.\d+)?)([dhms])")


def parse_duration(value: object) -> float:
    """Seconds as a float; raises ValueError with a readable message otherwise."""
    if isinstance(value, bool):
        raise ValueError(f'expected a duration such as 90, "90s", "5m" or "1h30m", got {value!r}')
    if isinstance(value, (int, float)):
        if value < 0:
            raise ValueError(f"a duration cannot be negative, got {value!r}")
        return float(value)
    if isinstance(value, str):
        text = value.strip().replace(" ", "")
        if re.fullmatch(r"\d+(\.\d+)?", text):
            return float(text)
        if _DURATION.fullmatch(text):
            units = [unit for _, unit in _PART.findall(text)]
            if len(units) == len(set(units)) and units == sorted(units, key="dhms".index):
                return float(
                    sum(float(amount) * _UNIT_SECONDS[unit] for amount, unit in _PART.findall(text))
                )
    raise ValueError(f'expected a duration such as 90, "90s", "5m" or "1h30m", got {value!r}')
