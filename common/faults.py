"""Fault points: named places in the manager and the lister where a test stops the process on purpose.

`JOBJOURNAL_FAULT` = "<point>@<n>[:<action>]": the n-th time the process passes <point>, it
- `exit`s at once (os._exit(FAULT_EXIT): as abrupt as kill -9, no `finally`, nothing flushed; the default),
- `stop`s (SIGSTOP to itself: a test resumes it with SIGCONT, as after a long pause), or
- `raise`s FaultInjected (for tests that run a service in a thread: it unwinds the service like a crash).
Empty (the default): no fault, and passing a point costs one comparison. A test that counts a
point's passes reads `FaultPoints.passes`.
"""

from __future__ import annotations

import os
import signal
from collections import Counter

import msgspec

from jobjournal.common.errors import JobJournalError

POINTS = {
    "manager.posted": "a post_events.lua round trip is written (one batch per partition it touched)",
    "manager.answered": "the replies of the handled requests are sent",
    "manager.dispatched": "the side effects of a flush are done (jobs dispatched, killed)",
    "manager.restored": "a new leader restored the active jobs, before its first step",
    "lister.applied": "a batch of journal events is applied to the view",
    "lister.rebuilding": "a rebuild is under way: between two pieces of the full journal it derives",
}
"""Every fault point, with where it is."""
ACTIONS = ("exit", "stop", "raise")
FAULT_EXIT = 99
"""The exit status of a process stopped by an `exit` fault."""


class FaultInjected(BaseException):
    """A `raise` fault: a BaseException, so no `except Exception` of the service stops it."""


class FaultPlan(msgspec.Struct, frozen=True):
    point: str
    at: int
    action: str


def parse_plan(text: str) -> FaultPlan | None:
    """The plan of a JOBJOURNAL_FAULT value (None when empty); JobJournalError when malformed."""
    if not text:
        return None
    where, _, action = text.partition(":")
    point, _, count = where.partition("@")
    action = action or "exit"
    if point not in POINTS:
        raise JobJournalError(f"bad fault {text!r}: no point {point!r} (points: {', '.join(sorted(POINTS))})")
    if not count.isdigit() or int(count) < 1:
        raise JobJournalError(f"bad fault {text!r}: the count after '@' must be a whole number from 1")
    if action not in ACTIONS:
        raise JobJournalError(f"bad fault {text!r}: action {action!r} is not one of {', '.join(ACTIONS)}")
    return FaultPlan(point, int(count), action)


class FaultPoints:
    """One process's fault points: `reached(point)` at each; acts once, at the planned pass."""

    def __init__(self, plan: str = ""):
        self.plan = parse_plan(plan)
        self.passes: Counter[str] = Counter()

    def reached(self, point: str) -> None:
        self.passes[point] += 1
        plan = self.plan
        if plan is None or point != plan.point or self.passes[point] != plan.at:
            return
        match plan.action:
            case "exit":
                os._exit(FAULT_EXIT)
            case "stop":
                os.kill(os.getpid(), signal.SIGSTOP)
            case "raise":
                raise FaultInjected(f"fault injected at {point}, pass {plan.at}")
