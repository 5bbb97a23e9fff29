"""Durations written as ``10s``, ``1m30s``, ``500ms``, ``2d`` or a plain number of seconds.

One grammar for every duration Stagecraft reads: config keys (``drain: 30s``)
and command-line values (``logs --since 1h30m``).
"""

from __future__ import annotations

import math
import re
from typing import Annotated, Any

from pydantic import BeforeValidator, WithJsonSchema

_UNITS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
    "d": 86400.0,
}
_PART = re.compile(r"(\d+(?:\.\d+)?|\.\d+)(ns|us|µs|ms|s|m|h|d)")
_NUMBER = re.compile(r"^\d+(?:\.\d+)?$|^\.\d+$")
PATTERN = r"^((\d+(\.\d+)?|\.\d+)(ns|us|µs|ms|s|m|h|d))+$|^\d+(\.\d+)?$"

HELP = "use e.g. 10s, 1m30s, 500ms or a number of seconds"


def parse_duration(value: object) -> float:
    """Seconds in ``value`` (a number, or a string like ``1m30s``); ValueError if malformed.

    >>> parse_duration("1m30s"), parse_duration("500ms"), parse_duration(5), parse_duration("1d")
    (90.0, 0.5, 5.0, 86400.0)
    """
    if isinstance(value, bool):
        raise ValueError(f"expected a duration, got {str(value).lower()}; {HELP}")
    if isinstance(value, int | float):
        seconds = float(value)
        if not math.isfinite(seconds) or seconds < 0:
            raise ValueError(f"invalid duration {value!r}; {HELP}")
        return seconds
    if not isinstance(value, str):
        raise ValueError(f"expected a duration, got {type(value).__name__}; {HELP}")
    text = value.strip()
    if _NUMBER.match(text):
        return float(text)
    total = 0.0
    position = 0
    for match in _PART.finditer(text):
        if match.start() != position:
            break
        total += float(match.group(1)) * _UNITS[match.group(2)]
        position = match.end()
    if not text or position != len(text):
        raise ValueError(f"invalid duration {value!r}; {HELP}")
    return total


def format_duration(seconds: float) -> str:
    """A short human form: ``90.0`` -> ``1m30s``, ``0.5`` -> ``500ms``."""
    if seconds < 1 and seconds != 0:
        return f"{seconds * 1000:g}ms"
    minutes, rest = divmod(seconds, 60)
    if minutes and rest:
        return f"{int(minutes)}m{rest:g}s"
    if minutes:
        return f"{int(minutes)}m"
    return f"{rest:g}s"


def _validate(value: Any) -> float:
    return parse_duration(value)


Duration = Annotated[
    float,
    BeforeValidator(_validate),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "pattern": PATTERN, "examples": ["10s", "1m30s", "500ms"]},
                {"type": "number", "minimum": 0},
            ]
        }
    ),
]
"""A pydantic field type: accepts ``10s``/``1m30s``/``500ms``/``12``, stores float seconds."""
