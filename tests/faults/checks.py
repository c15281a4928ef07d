"""What must hold after any crash: every acknowledged job exists, ran once, ended, and every
record of it agrees (eventlog, journal, lister view)."""

from __future__ import annotations

import itertools

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


def assert_no_core_held_twice(redis, job_ids) -> None:
    """No core was allocated to two jobs at once: each job holds its R's cores from its alloc to its
    free (event timestamps, all from the manager's clock). A free posted after an allocation that
    reused its cores (a crash between partitions' writes) shows up as an overlap."""
    from jobjournal.common.resources import decode_idset, decode_R
    from tests.helpers import part_of

    held: dict[tuple[int, int], list[tuple[float, float, int]]] = {}
    for job_id in job_ids:
        alloc = free = None
        for _, fields in redis.xrange(part_of(redis, job_id).job_eventlog(job_id)):
            if fields[b"name"] == b"alloc":
                alloc = (ev.decode_entry(fields).timestamp, decode_R(ev.entry_attachments(fields)[1]))
            elif fields[b"name"] == b"free":
                free = ev.decode_entry(fields).timestamp
        if alloc is None:
            continue
        assert free is not None, f"job {job_id} was allocated and never freed"
        for entry in alloc[1].execution.R_lite:
            for rank in decode_idset(entry.rank):
                for core in decode_idset(entry.children["core"]):
                    held.setdefault((rank, core), []).append((alloc[0], free, job_id))
    for (rank, core), spans in held.items():
        spans.sort()
        for (_, end, before), (start, _, after) in itertools.pairwise(spans):
            assert start >= end, f"rank {rank} core {core}: job {after} allocated before job {before} freed it"
