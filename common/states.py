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
    match event:
        case ev.Submit():
            return State.NEW if state is None else state
        case ev.Validate() if state == State.NEW:
            return State.DEPEND
        case ev.Invalidate() if state == State.NEW:
            return State.INACTIVE
        case ev.Depend() if state == State.DEPEND:
            return State.PRIORITY
        case ev.Priority() if state == State.PRIORITY:
            return State.SCHED
        case ev.Restart() if state == State.SCHED:
            return State.PRIORITY
        case ev.Alloc() if state == State.SCHED:
            return State.RUN
        case ev.Finish() if state == State.RUN:
            return State.CLEANUP
        case ev.Exception_(severity=0) if state is not None and state & (ACTIVE & ~State.CLEANUP):
            return State.CLEANUP
        case ev.Clean() if state == State.CLEANUP:
            return State.INACTIVE
    return state


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
