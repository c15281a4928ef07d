"""What must hold after any crash: every acknowledged job exists, ran once, ended, and every
record of it agrees (eventlog, journal, lister view)."""

from __future__ import annotations

from jobjournal.common import events as ev
from jobjournal.common.states import State, next_state
from tests.helpers import assert_journal_matches_eventlogs, current_view, eventlog, naive_view


def assert_each_job_lived_once(redis, job_ids) -> None:
    """Every job's eventlog is one legal walk through the state machine, ending inactive."""
    for job_id in job_ids:
        events = eventlog(redis, job_id)
        assert events, f"acknowledged job {job_id} is missing"
        state = None
        for event in events:
            after = next_state(state, event)
            moving = isinstance(event, ev.Submit | ev.Validate | ev.Depend | ev.Alloc | ev.Finish | ev.Clean)
            assert not (moving and after == state), f"job {job_id}: {ev.event_name(event)} twice or out of order"
            state = after
        assert state == State.INACTIVE, f"job {job_id} ended in {state}"
        names = [ev.event_name(event) for event in events]
        assert names.count("submit") == 1 and names.count("clean") == 1


def assert_all_records_agree(redis) -> None:
    assert_journal_matches_eventlogs(redis)
    assert current_view(redis) == naive_view(redis)
