"""A JSON constraint language for job queries, after RFC 31 (and Flux's job-list).

    {}                 every job
    {"and": [C, ...]}  all of them ([] : true)
    {"or": [C, ...]}   any of them ([] : true, as RFC 31 says)
    {"not": [C, ...]}  not all of them (NOT of their AND, as job-list; [] : false)
    {"userid": [1000, ...]}  {"name": ["sim", ...]}  {"queue": ["batch", ...]}
    {"states": ["pending", "RUN", ...]}  {"results": ["failed", ...]}
    {"hostlist": ["node[0-3]", ...]}  jobs that ran on any of these hosts (RFC 29 hostlists)
    {"ranks": ["0-3", 7, ...]}        jobs that ran on any of these ranks (RFC 22 idsets)
    {"t_submit": [">=1700000000", ...]}  (also t_depend, t_run, t_cleanup, t_inactive;
                                          operators >=, <=, >, <, =; values are seconds)

`compile_constraint()` checks the whole expression and returns a predicate over JobView;
every error names what is wrong, in at most a line. Where this differs from job-list (time terms
take several values, OR-ed, bare numbers and `=`): docs/flux-differences.md.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable

from jobjournal.common import hostlists
from jobjournal.common.keys import STATE_GROUPS
from jobjournal.common.resources import decode_idset, idset_ranges
from jobjournal.common.states import Result, State
from jobjournal.lister.errors import QueryError
from jobjournal.lister.model import JobView

MAX_DEPTH = 16
MAX_NODES = 256
TIME_ATTRS = ("t_submit", "t_depend", "t_run", "t_cleanup", "t_inactive")
_OPERATORS = {">=": operator.ge, "<=": operator.le, ">": operator.gt, "<": operator.lt, "=": operator.eq}
_COMPARISON = re.compile(r"^\s*(>=|<=|>|<|=)?\s*([-+]?[0-9.eE+-]+)\s*$")

Predicate = Callable[[JobView], bool]


def parse_states(names) -> State:
    """A mask of states from names like 'pending', 'running', 'SCHED' (any case)."""
    mask = State(0)
    for name in names:
        if not isinstance(name, str):
            raise QueryError(f"state {name!r:.40} is not a name")
        key = name.strip()
        if key.lower() in STATE_GROUPS:
            mask |= STATE_GROUPS[key.lower()]
        elif key.upper() in State.__members__:
            mask |= State[key.upper()]
        else:
            raise QueryError(f"unknown state {name!r:.40}")
    return mask


def parse_results(names) -> set[str]:
    results = set()
    for name in names:
        if not isinstance(name, str) or name.strip().upper() not in Result.__members__:
            raise QueryError(f"unknown result {name!r:.40}")
        results.add(name.strip().upper())
    return results


def compile_constraint(expression) -> Predicate:
    counter = [0]
    return _compile(expression, 0, counter)


def _compile(node, depth: int, counter: list[int]) -> Predicate:
    counter[0] += 1
    if depth > MAX_DEPTH or counter[0] > MAX_NODES:
        raise QueryError(f"constraint is too large (at most {MAX_DEPTH} deep and {MAX_NODES} terms)")
    if node == {}:
        return lambda view: True  # as job-list: the empty constraint matches every job
    if not isinstance(node, dict) or len(node) != 1:
        raise QueryError(f"constraint term must be an object with one operator, not {node!r:.60}")
    [(op, values)] = node.items()
    if not isinstance(values, list):
        raise QueryError(f"constraint {op!r:.40} takes a list of values")
    match op:
        case "and" | "or" | "not":
            children = [_compile(child, depth + 1, counter) for child in values]
            return _logical(op, children)
        case "userid":
            if not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
                raise QueryError("constraint 'userid' values must be integers")
            wanted = set(values)
            return lambda view: view.userid in wanted
        case "name" | "queue":
            if not all(isinstance(v, str) for v in values):
                raise QueryError(f"constraint {op!r} values must be strings")
            wanted = set(values)
            return lambda view: getattr(view, op) in wanted
        case "states":
            mask = parse_states(values)
            return lambda view: bool(State[view.state] & mask)
        case "results":
            wanted = parse_results(values)
            return lambda view: view.result in wanted
        case "hostlist":
            return _on_hosts(values)
        case "ranks":
            return _on_ranks(values)
        case _ if op in TIME_ATTRS:
            tests = [_comparison(op, value) for value in values]
            return lambda view: any(test(view) for test in tests)
    raise QueryError(f"unknown constraint operator {op!r:.40}")


def _logical(op: str, children: list[Predicate]) -> Predicate:
    if op == "and":
        return lambda view: all(child(view) for child in children)
    if op == "or":  # RFC 31: an 'or' of nothing is true
        return lambda view: not children or any(child(view) for child in children)
    return lambda view: not all(child(view) for child in children)  # job-list: NOT of the AND


def _on_hosts(values: list) -> Predicate:
    """Jobs whose nodes (R's nodelist) include a host of any of these hostlists; a job that
    never ran matches none."""
    try:
        patterns = [pattern for value in values for pattern in hostlists.parse(value)]
    except hostlists.HostlistError as err:
        raise QueryError(f"constraint 'hostlist': {err}") from err

    def test(view: JobView) -> bool:
        if not view.nodelist:
            return False
        try:
            hosts = hostlists.expand(view.nodelist)
        except hostlists.HostlistError:
            return False
        return any(pattern.matches(host) for host in hosts for pattern in patterns)

    return test


def _on_ranks(values: list) -> Predicate:
    """Jobs allocated any of these ranks (idsets like '0-3,7', or integers); a job that never
    ran matches none."""
    ranges: list[tuple[int, int]] = []
    for value in values:
        text = str(value) if isinstance(value, int) and not isinstance(value, bool) else value
        try:
            ranges += idset_ranges(text) if isinstance(text, str) else []
        except ValueError:
            text = None
        if not isinstance(text, str):
            raise QueryError(f"constraint 'ranks': {value!r:.40} is not an idset like '0-3,7'")

    def test(view: JobView) -> bool:
        return bool(view.ranks) and any(low <= rank <= high for rank in decode_idset(view.ranks)
                                        for low, high in ranges)

    return test


def _comparison(attr: str, value) -> Predicate:
    if isinstance(value, int | float) and not isinstance(value, bool):
        compare, number = operator.eq, float(value)
    else:
        match = _COMPARISON.match(value) if isinstance(value, str) else None
        try:
            number = float(match.group(2)) if match else math.nan
        except ValueError:
            number = math.nan
        if not math.isfinite(number):
            raise QueryError(f"constraint {attr!r}: {value!r} is not a comparison like '>=1700000000.5'")
        compare = _OPERATORS[match.group(1) or "="]

    def test(view: JobView) -> bool:
        actual = getattr(view, attr)
        return actual is not None and compare(actual, number)

    return test
