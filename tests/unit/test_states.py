"""The RFC 21 state machine as a pure function, job results, and the default priority plugin."""

from __future__ import annotations

import pytest

from jobjournal.common import events as ev
from jobjournal.common.states import (
    ACTIVE,
    PENDING,
    PRIORITY_MAX,
    PRIORITY_MIN,
    RUNNING,
    Result,
    State,
    next_state,
    priority_for,
    result_of,
)

T = 1_750_000_000.0

EVENTS = {
    "submit": ev.Submit(timestamp=T, userid=1000, urgency=16),
    "validate": ev.Validate(timestamp=T),
    "invalidate": ev.Invalidate(timestamp=T, note="bad"),
    "depend": ev.Depend(timestamp=T),
    "priority": ev.Priority(timestamp=T, priority=16),
    "urgency": ev.Urgency(timestamp=T, userid=1000, urgency=3),
    "alloc": ev.Alloc(timestamp=T),
    "start": ev.Start(timestamp=T),
    "finish": ev.Finish(timestamp=T, status=0),
    "release": ev.Release(timestamp=T),
    "free": ev.Free(timestamp=T),
    "clean": ev.Clean(timestamp=T),
    "fatal-exception": ev.Exception_(timestamp=T, type="cancel", severity=0),
    "nonfatal-exception": ev.Exception_(timestamp=T, type="memo", severity=1),
    "memo": ev.Memo(timestamp=T, data={"k": 1}),
    "restart": ev.Restart(timestamp=T),
}

TRANSITIONS = {
    (None, "submit"): State.NEW,
    (State.NEW, "validate"): State.DEPEND,
    (State.NEW, "invalidate"): State.INACTIVE,
    (State.DEPEND, "depend"): State.PRIORITY,
    (State.PRIORITY, "priority"): State.SCHED,
    (State.SCHED, "restart"): State.PRIORITY,
    (State.SCHED, "alloc"): State.RUN,
    (State.RUN, "finish"): State.CLEANUP,
    (State.CLEANUP, "clean"): State.INACTIVE,
    **{
        (state, "fatal-exception"): State.CLEANUP
        for state in (State.NEW, State.DEPEND, State.PRIORITY, State.SCHED, State.RUN)
    },
}

ALL_STATES = [None, *State]


def _label(value) -> str:
    return value.name if isinstance(value, State) else str(value)


@pytest.mark.parametrize(
    ("state", "event", "after"),
    [(state, event, after) for (state, event), after in TRANSITIONS.items()],
    ids=lambda value: _label(value),
)
def test_each_rfc21_transition_moves_the_job(state, event, after):
    assert next_state(state, EVENTS[event]) == after


@pytest.mark.parametrize(
    ("state", "event"),
    [(s, e) for s in ALL_STATES for e in EVENTS if (s, e) not in TRANSITIONS],
    ids=lambda value: _label(value),
)
def test_an_event_that_does_not_apply_in_a_state_leaves_it_unchanged(state, event):
    assert next_state(state, EVENTS[event]) is state


@pytest.mark.parametrize("state", ALL_STATES, ids=_label)
def test_a_non_fatal_exception_never_changes_the_state(state):
    for severity in (1, 2, 7):
        exception = ev.Exception_(timestamp=T, type="timeout", severity=severity)
        assert next_state(state, exception) is state


@pytest.mark.parametrize("exception_type", ["cancel", "timeout", "exec", "alloc"])
def test_any_fatal_exception_type_sends_a_running_job_to_cleanup(exception_type):
    exception = ev.Exception_(timestamp=T, type=exception_type, severity=0)
    assert next_state(State.RUN, exception) == State.CLEANUP


def test_a_fatal_exception_in_cleanup_or_inactive_changes_nothing():
    fatal = EVENTS["fatal-exception"]
    assert next_state(State.CLEANUP, fatal) == State.CLEANUP
    assert next_state(State.INACTIVE, fatal) == State.INACTIVE


def test_a_second_submit_does_not_reset_the_job():
    assert next_state(State.RUN, EVENTS["submit"]) == State.RUN


def test_a_full_life_walks_every_state_in_order():
    names = ["submit", "validate", "depend", "priority", "alloc", "start", "finish",
             "release", "free", "clean"]
    state, seen = None, []
    for name in names:
        state = next_state(state, EVENTS[name])
        if not seen or seen[-1] != state:
            seen.append(state)
    assert seen == [State.NEW, State.DEPEND, State.PRIORITY, State.SCHED, State.RUN,
                    State.CLEANUP, State.INACTIVE]


def test_state_masks_group_the_states_as_rfc21_does():
    assert [s for s in State if s & PENDING] == [State.DEPEND, State.PRIORITY, State.SCHED]
    assert [s for s in State if s & RUNNING] == [State.RUN, State.CLEANUP]
    assert [s for s in State if not s & ACTIVE] == [State.INACTIVE]


@pytest.mark.parametrize(
    ("finish_status", "exception", "result"),
    [
        (0, None, Result.COMPLETED),
        (1 << 8, None, Result.FAILED),
        (127 << 8, None, Result.FAILED),
        (9, None, Result.FAILED),
        (None, None, Result.FAILED),
        (0, ev.Exception_(timestamp=T, type="cancel", severity=0), Result.CANCELED),
        (None, ev.Exception_(timestamp=T, type="cancel", severity=0), Result.CANCELED),
        (0, ev.Exception_(timestamp=T, type="timeout", severity=0), Result.TIMEOUT),
        (15, ev.Exception_(timestamp=T, type="timeout", severity=0), Result.TIMEOUT),
        (0, ev.Exception_(timestamp=T, type="exec", severity=0), Result.FAILED),
        (None, ev.Exception_(timestamp=T, type="alloc", severity=0), Result.FAILED),
    ],
    ids=[
        "exit-0", "exit-1", "exit-127", "signal-9", "never-finished", "cancel-after-exit-0",
        "cancel-before-run", "timeout", "timeout-killed", "exec-exception", "alloc-exception",
    ],
)
def test_result_of_a_job(finish_status, exception, result):
    assert result_of(finish_status, exception) == result


@pytest.mark.parametrize(
    ("urgency", "priority"),
    [(0, PRIORITY_MIN), (1, 1), (16, 16), (30, 30), (31, PRIORITY_MAX)],
)
def test_priority_for_urgency(urgency, priority):
    assert priority_for(urgency) == priority


def test_the_priority_range_is_0_to_2_pow_32_minus_1():
    assert (PRIORITY_MIN, PRIORITY_MAX) == (0, 4294967295)
