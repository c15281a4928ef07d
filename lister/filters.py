"""Reading a listing's filters from text, as `jobjournal jobs` and the web view take them.

Each reader raises FilterError (naming the option it reads) for text it cannot take; the CLI
turns it into a usage error, the web view into a 400 answer.
"""

from __future__ import annotations

import datetime
import json
import math
import re

from jobjournal.common.durations import parse_duration
from jobjournal.lister.errors import QueryError

RESULTS = ("COMPLETED", "FAILED", "CANCELED", "CANCELLED", "TIMEOUT")


class FilterError(QueryError):
    """A filter's text cannot be read; `option` names the filter (--since, --constraint, ...)."""

    def __init__(self, message: str, option: str):
        super().__init__(message)
        self.option = option


def since(text: str, now: float) -> float:
    """WHEN: seconds since the epoch, an ISO date/time, or an RFC 23 duration ago ('-1h', '30m');
    a time in the future is an error, as in Flux."""
    when = _when(text, now)
    if when > now:
        raise FilterError(f"{text!r} appears to be in the future", "--since")
    return when


def _when(text: str, now: float) -> float:
    try:
        when = float(text)
    except ValueError:
        pass
    else:
        if math.isfinite(when):
            return when
    try:
        return now - parse_duration(text.removeprefix("-"))
    except ValueError:
        pass
    try:
        return datetime.datetime.fromisoformat(text).timestamp()
    except ValueError as err:
        raise FilterError(f"{text!r} is not a time, date or duration", "--since") from err


def states_and_results(text: str) -> tuple[list[str], list[str]]:
    """-f: states and results, separated by ',' or '|', OR-ed."""
    states, results = [], []
    for word in filter(None, re.split(r"[,|]", text)):
        upper = word.strip().upper()
        if upper in RESULTS:
            results.append(upper.replace("CANCELLED", "CANCELED"))
        else:
            states.append(word.strip())
    return states, results


def constraint(text: str | None) -> dict | None:
    """A JSON constraint (RFC 31), not yet checked (the query compiles it)."""
    if text is None:
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise FilterError(f"not JSON: {err}", "--constraint") from err
    except RecursionError as err:
        raise FilterError("nested too deep (a constraint may nest 16 deep)", "--constraint") from err
