"""Durations as people write them: `90`, `90s`, `20m`, `1h30m`, `1.5h` (plain numbers are
seconds). One parser for the command line, the configuration file and AGENTLOOP_*."""

from __future__ import annotations

import math
import re

_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)([smhd])")
EXAMPLES = "90, 90s, 20m, 1h or 1h30m"


def parse(text: str) -> float:
    """Seconds in `text`; ValueError with a sentence a user can act on when it is not a
    positive duration."""
    raw = text.strip().lower().replace(" ", "")
    seconds: float | None = None
    try:
        seconds = float(raw)
    except ValueError:
        parts = _PART.findall(raw)
        # Each unit once, largest first: `30m1h` is a typo more often than a duration.
        units = [unit for _, unit in parts]
        ordered = sorted(units, key=lambda u: -_UNITS[u]) == units and len(set(units)) == len(units)
        if parts and ordered and "".join(n + u for n, u in parts) == raw:
            seconds = sum(float(n) * _UNITS[u] for n, u in parts)
    if seconds is None or not math.isfinite(seconds):
        raise ValueError(f"{text!r} is not a duration (write seconds or e.g. {EXAMPLES})")
    if seconds <= 0:
        raise ValueError(f"{text!r} is not a positive duration")
    return seconds


def coerce(value: object) -> object:
    """For pydantic: a string is parsed as a duration; anything else is left for the
    field's own validation (numbers, and the error for other types)."""
    if isinstance(value, str):
        return parse(value)
    return value
