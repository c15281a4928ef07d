"""A JSON constraint language for job queries, after RFC 31 (and Flux's job-list).

    {"and": [C, ...]}  {"or": [C, ...]}  {"not": [C]}
    {"userid": [1000, ...]}  {"name": ["sim", ...]}  {"queue": ["batch", ...]}
    {"states": ["pending", "RUN", ...]}  {"results": ["failed", ...]}
    {"t_submit": [">=1700000000", ...]}  (also t_depend, t_run, t_cleanup, t_inactive;
                                          operators >=, <=, >, <, =; values are seconds)

`compile_constraint()` checks the whole expression and returns a predicate over JobView;
every error names what is wrong.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable

from jobjournal.common.keys import STATE_GROUPS
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
            raise QueryError(f"state {name!r} is not a name")
        key = name.strip()
        if key.lower() in STATE_GROUPS:
            mask |= STATE_GROUPS[key.lower()]
        elif key.upper() in State.__members__:
            mask |= State[key.upper()]
        else:
            raise QueryError(f"unknown state {name!r}")
    return mask


def parse_results(names) -> set[str]:
    results = set()
    for name in names:
        if not isinstance(name, str) or name.strip().upper() not in Result.__members__:
            raise QueryError(f"unknown result {name!r}")
        results.add(name.strip().upper())
    return results


def compile_constraint(expression) -> Predicate:
    counter = [0]
    return _compile(expression, 0, counter)


def _compile(node, depth: int, counter: list[int]) -> Predicate:
    counter[0] += 1
    if depth > MAX_DEPTH or counter[0] > MAX_NODES:
        raise QueryError(f"constraint is too large (at most {MAX_DEPTH} deep and {MAX_NODES} terms)")
    if not isinstance(node, dict) or len(node) != 1:
        raise QueryError(f"constraint term must be an object with one operator, not {node!r:.60}")
    [(op, values)] = node.items()
    if not isinstance(values, list):
        raise QueryError(f"constraint {op!r} takes a list of values")
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
        case _ if op in TIME_ATTRS:
            tests = [_comparison(op, value) for value in values]
            return lambda view: any(test(view) for test in tests)
    raise QueryError(f"unknown constraint operator {op!r}")


def _logical(op: str, children: list[Predicate]) -> Predicate:
    if op == "and":
        return lambda view: all(child(view) for child in children)
    if op == "or":
        return lambda view: any(child(view) for child in children)
    if len(children) != 1:
        raise QueryError("constraint 'not' takes exactly one term")
    [child] = children
    return lambda view: not child(view)


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
