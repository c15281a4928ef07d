"""A listing request's query parameters, read into a ListQuery (the same filters as `jobjournal jobs`).

Parameters: `state` (states and results, ',' or '|' between them: pending, running, inactive,
failed, ...; default every job), `user` (a uid, or `all`: the default), `queue`, `name`, `since`
(a time, an ISO date, or a duration ago), `constraint` (RFC 31, JSON), `limit` (1 to MAX_LIMIT,
default DEFAULT_LIMIT), `after` (a page cursor: `<list>:<score>:<job id>`, as the answer's `next`
gives it). A value that cannot be read raises FilterError naming the parameter.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping

from jobjournal.common.ids import InvalidJobId, f58, parse_job_id
from jobjournal.common.keys import VIEW_LISTS
from jobjournal.lister import filters
from jobjournal.lister import query as q

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
KNOWN = frozenset({"state", "user", "queue", "name", "since", "constraint", "limit", "after"})


def list_query(params: Mapping[str, str], max_work: int) -> q.ListQuery:
    unknown = sorted(set(params) - KNOWN)
    if unknown:
        raise filters.FilterError(f"unknown parameter {unknown[0]!r} (known: {', '.join(sorted(KNOWN))})", unknown[0])
    states, results = filters.states_and_results(params.get("state", ""))
    since = params.get("since")
    return q.ListQuery(
        max_entries=_limit(params.get("limit")),
        attrs=["all"],
        userid=_user(params.get("user", "all")),
        states=states,
        results=results,
        name=params.get("name") or None,
        queue=params.get("queue") or None,
        since=filters.since(since, time.time()) if since else 0.0,
        constraint=filters.constraint(params.get("constraint") or None),
        max_work=max_work,
        after=_cursor(params["after"]) if params.get("after") else None,
    )


def next_cursor(after: tuple[str, float, int] | None) -> str | None:
    """The text of a next page's cursor (None: no next page)."""
    return None if after is None else f"{after[0]}:{after[1]!r}:{f58(after[2])}"


def _cursor(text: str) -> tuple[str, float, int]:
    list_name, _, rest = text.partition(":")
    score, _, job = rest.rpartition(":")
    try:
        value = float(score)
        job_id = parse_job_id(job)
    except (ValueError, InvalidJobId) as err:
        raise filters.FilterError(f"after must be a page cursor like 'inactive:1700000000.5:f2X', not {text!r}",
                                  "after") from err
    if list_name not in VIEW_LISTS or not math.isfinite(value):
        raise filters.FilterError(f"after must be a page cursor like 'inactive:1700000000.5:f2X', not {text!r}",
                                  "after")
    return list_name, value, job_id


def _limit(text: str | None) -> int:
    if text is None:
        return DEFAULT_LIMIT
    if not text.isdigit() or not 1 <= int(text) <= MAX_LIMIT:
        raise filters.FilterError(f"limit must be a whole number from 1 to {MAX_LIMIT}, not {text!r}", "limit")
    return int(text)


def _user(text: str) -> int | None:
    if text == "all":
        return None
    if not text.isdigit() or int(text) >= 2**32:
        raise filters.FilterError(f"user must be a uid or 'all', not {text!r}", "user")
    return int(text)
