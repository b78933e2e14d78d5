"""Strict JSON for everything the CLI prints: NaN and infinity become null.

`json.dumps` writes bare `NaN` and `Infinity` by default, which no strict JSON parser
reads. Inputs are finite (core/limits.py), but a figure computed from them may still not
be; `dumps` makes the output valid whatever it holds.
"""

from __future__ import annotations

import json
import math
from typing import Any


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(item) for item in value]
    return value


def dumps(value: Any) -> str:
    """`json.dumps`, with every non-finite float written as null."""
    return json.dumps(_finite(value), allow_nan=False)
