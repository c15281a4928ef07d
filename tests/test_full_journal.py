"""A full consumer sees every job once in the backlog, then every later event once (invariant 2)."""

import random
import threading
import time

from jobjournal.common import events as ev
from jobjournal.common import full_journal as fj
from jobjournal.common import journal as jr
from jobjournal.common import reply_format as rf
from jobjournal.common.jobspec import make_jobspec
from jobjournal.common.keys import LEGACY
from tests.helpers import eventlog, submit, wait_for, wait_inactive


def _consume(redis, until, consumer=None, allow=(), deny=()):
    """Run a full consumer; once until() holds, read up to the journal head and return
    (backlog jobs, sentinel, live entries)."""
    backlog, live, sentinel = [], [], None
    target = None
    for item in fj.follow_full_journal(redis, consumer, allow, deny, block_ms=50):
        match item:
            case rf.BacklogJob():
                backlog.append(item)
            case rf.Sentinel():
                sentinel = item
            case jr.JournalEvent():
                live.append(item)
        if sentinel is None:
            continue
        if target is None and until():
            target = jr.journal_head(redis, LEGACY)[1]
        seen = live[-1].seq if live else sentinel.seq
        if target is not None and (item is None or seen >= target):
            break  # None: nothing new in the journal, so we are at its head
    return backlog, sentinel, live


def _seen_per_job(backlog, live):
    seen: dict[int, list] = {}
    for job in backlog:
        assert job.job_id not in seen, f"job {job.job_id} twice in the backlog"
        seen[job.job_id] = list(job.events)
    for entry in live:
        if entry.event is not None:
            seen.setdefault(entry.job_id, []).append(entry.event)
    return seen


def test_a_full_journal_of_an_idle_system_holds_every_job_then_a_sentinel(redis, start_manager):
    start_manager()
    done = submit(redis, 5)
    wait_inactive(redis, done)
    backlog, sentinel, live = _consume(redis, until=lambda: True)
    assert sorted(job.job_id for job in backlog) == sorted(done)
    assert sentinel.jobs == 5 and live == []
    for job in backlog:
        assert job.events == eventlog(redis, job.job_id)
        assert job.jobspec and b"environment" not in bytes(job.jobspec)
        assert job.R


def test_no_event_is_lost_or_seen_twice_across_the_sentinel_under_load(redis, start_manager):
    start_manager(nodes=4, cores_per_node=8)
    submitted: list[int] = []
    stop = threading.Event()

    def keep_submitting():
        rng = random.Random(7)
        while not stop.is_set():
            submitted.extend(submit(redis, rng.randint(1, 20), sim={"runtime": rng.choice([0, 0.01, 0.05])}))
            time.sleep(0.005)

    first = submit(redis, 300, sim={"runtime": 0.02})
    submitted.extend(first)
    feeder = threading.Thread(target=keep_submitting)
    feeder.start()
    try:
        # the consumer arrives while jobs flow; its request is in the inbox after the first 300
        wait_for(lambda: len(submitted) > len(first), what="the feeder to submit")
        at_sentinel = None

        def all_done():  # asked once the sentinel is in
            nonlocal at_sentinel
            if at_sentinel is None:
                at_sentinel = len(submitted)
            # and jobs submitted after the sentinel came, which no backlog can hold
            if len(submitted) < max(1500, at_sentinel + 50):
                return False
            stop.set()
            feeder.join()
            return all(redis.zscore("jj:jobs:inactive", j) is not None for j in submitted)

        backlog, sentinel, live = _consume(redis, until=all_done)
    finally:
        stop.set()
        feeder.join()

    assert sentinel is not None and len(backlog) == sentinel.jobs
    assert 0 < len(backlog) < len(submitted), "the request should land mid-stream"
    seqs = [entry.seq for entry in live]
    assert seqs == list(range(sentinel.seq + 1, sentinel.seq + 1 + len(live)))
    seen = _seen_per_job(backlog, live)
    assert sorted(seen) == sorted(submitted)
    for job_id in submitted:
        assert seen[job_id] == eventlog(redis, job_id), f"job {job_id} differs from its eventlog"


def test_a_full_journal_can_leave_out_or_keep_only_named_events(redis, start_manager):
    start_manager()
    job_ids = submit(redis, 3)
    wait_inactive(redis, job_ids)
    backlog, _, _ = _consume(redis, until=lambda: True, allow=["submit", "clean"])
    assert {tuple(ev.event_name(e) for e in job.events) for job in backlog} == {("submit", "clean")}
    backlog, _, _ = _consume(redis, until=lambda: True, deny=["memo", "priority", "depend"])
    names = {ev.event_name(e) for job in backlog for e in job.events}
    assert "priority" not in names and "depend" not in names and "clean" in names


def test_a_non_full_consumer_follows_the_journal_from_now(redis, start_manager):
    start_manager()
    before = submit(redis, 2)
    wait_inactive(redis, before)
    cursor, seq = jr.journal_head(redis, LEGACY)
    after = submit(redis, 1)
    wait_inactive(redis, after)
    entries = jr.read_journal(redis, LEGACY, cursor, seq)
    assert {entry.job_id for entry in entries} == set(after)
    assert [e.event for e in entries] == eventlog(redis, after[0])


def test_the_redacted_jobspec_travels_with_submit_and_r_with_alloc(redis, start_manager):
    from jobjournal.manager.ingest import accept_jobs

    start_manager()
    spec = make_jobspec(command=["env"], environment={"SECRET": "hunter2"})
    [job_id] = accept_jobs(redis, [__import__("msgspec").json.encode(spec)], 1000)
    wait_inactive(redis, [job_id])
    entries = [e for e in jr.read_journal(redis, LEGACY, "0-0", 0, count=10000) if e.job_id == job_id]
    submit_entry = next(e for e in entries if isinstance(e.event, ev.Submit))
    alloc_entry = next(e for e in entries if isinstance(e.event, ev.Alloc))
    assert b"hunter2" not in submit_entry.jobspec and b'"env"' in submit_entry.jobspec
    assert b"R_lite" in alloc_entry.R
    assert all(b"hunter2" not in (e.jobspec or b"") for e in entries)
