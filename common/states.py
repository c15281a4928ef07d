"""Job states and results (RFC 21), and the state machine as a pure function."""

from __future__ import annotations

import enum

from jobjournal.common import events as ev


class State(enum.IntFlag):
    """Job states; values are RFC 21's bit flags, so sets of states are masks."""

    NEW = 1
    DEPEND = 2
    PRIORITY = 4
    SCHED = 8
    RUN = 16
    CLEANUP = 32
    INACTIVE = 64


PENDING = State.DEPEND | State.PRIORITY | State.SCHED
RUNNING = State.RUN | State.CLEANUP
ACTIVE = State.NEW | PENDING | RUNNING


class Result(enum.IntFlag):
    COMPLETED = 1
    FAILED = 2
    CANCELED = 4
    TIMEOUT = 8


def next_state(state: State | None, event: ev.Event) -> State | None:
    """The state after `event`; the same state when the event does not move the job.

    `state` is None before the submit event.
    """
    kind = type(event)
    if kind is ev.Submit:
        return State.NEW if state is None else state
    if kind is ev.Exception_:
        if event.severity == 0 and state is not None and state & (ACTIVE & ~State.CLEANUP):
            return State.CLEANUP
        return state
    return _MOVES.get((kind, state), state)


_MOVES: dict[tuple[type, State], State] = {
    (ev.Validate, State.NEW): State.DEPEND,
    (ev.Invalidate, State.NEW): State.INACTIVE,
    (ev.Depend, State.DEPEND): State.PRIORITY,
    (ev.Priority, State.PRIORITY): State.SCHED,
    (ev.Restart, State.SCHED): State.PRIORITY,
    (ev.Alloc, State.SCHED): State.RUN,
    (ev.Finish, State.RUN): State.CLEANUP,
    (ev.Clean, State.CLEANUP): State.INACTIVE,
}
"""(event class, state) -> the state it moves the job to: RFC 21's transitions but submit's and
a fatal exception's (which depend on more than the pair)."""


def result_of(finish_status: int | None, exception: ev.Exception_ | None) -> Result:
    """The result of an inactive job, from its finish status and first fatal exception."""
    if exception is not None:
        if exception.type == "cancel":
            return Result.CANCELED
        if exception.type == "timeout":
            return Result.TIMEOUT
        return Result.FAILED
    return Result.COMPLETED if finish_status == 0 else Result.FAILED


def priority_for(urgency: int) -> int:
    """The default priority plugin: urgency 0 holds, 31 expedites, others map through."""
    if urgency == 0:
        return PRIORITY_MIN
    if urgency == 31:
        return PRIORITY_MAX
    return urgency


PRIORITY_MIN = 0
PRIORITY_MAX = 4294967295
