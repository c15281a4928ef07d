"""Flux Standard Duration (RFC 23): `N[SUFFIX]`, N a non-negative floating point number, SUFFIX one of
ms, s, m, h, d (case sensitive; none: seconds), or `inf` / `infinity` alone. The one parser of
durations, for every option that takes one."""

from __future__ import annotations

import math
import re

UNITS = {"ms": 1e-3, "": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_FSD = re.compile(r"((?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)(ms|s|m|h|d)?")


def parse_duration(text: str) -> float:
    """Seconds in an RFC 23 duration ('1.5m' -> 90.0, '250ms' -> 0.25, 'inf' -> math.inf);
    ValueError naming what is wrong."""
    stripped = text.strip()
    if stripped in ("inf", "infinity"):
        return math.inf
    match = _FSD.fullmatch(stripped)
    if match is None:
        raise ValueError(f"{text!r} is not a duration (RFC 23: a number with ms, s, m, h or d, e.g. 30s, 1.5m, 2h)")
    return float(match.group(1)) * UNITS[match.group(2) or ""]
