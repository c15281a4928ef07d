"""Helpers for tests: waiting, submitting straight into the manager's inbox, reading eventlogs,
recording what Redis runs, a clock the test sets.

Timing: a test never asserts right after a sleep, nor on how long something took (that is
`make bench`). It waits for a condition with a deadline (`wait_for`); deadlines are generous
(DEADLINE: they hold on a loaded machine several times slower) and cost nothing when things go
right. Whatever depends on the passing of time uses a clock the test sets, where the product
takes one (SettableClock)."""

from __future__ import annotations

import contextlib
import re
import threading
import time

import pytest

from jobjournal.common import events as ev
from jobjournal.common import journal as jr
from jobjournal.common.jobspec import encode, make_jobspec
from jobjournal.common.keys import LEGACY, Partition
from jobjournal.common.layout import read_layout
from jobjournal.manager.ingest import accept_jobs

DEADLINE = 30.0
"""The default deadline of a wait: well within the per-test timeout (pyproject: 60 s)."""


def wait_for(condition, timeout: float = DEADLINE, interval: float = 0.02, what: str = "condition"):
    """Poll until condition() is truthy; return its value or fail the test. A condition that
    raises (an eventlog not written yet, a key not there yet) counts as "not yet"; its last error
    is named if the deadline passes."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while True:
        try:
            value = condition()
        except Exception as err:  # noqa: BLE001 - "not yet"; reported at the deadline
            value, last_error = None, err
        if value:
            return value
        if time.monotonic() > deadline:
            reason = f" (last error: {last_error!r})" if last_error is not None else ""
            pytest.fail(f"timed out after {timeout}s waiting for {what}{reason}")
        time.sleep(interval)


def process_log(proc) -> str:
    """What a process started by the `spawn` fixture has logged so far."""
    with open(proc.log_path) as log:
        return log.read()


def is_inactive(redis, job_id: int) -> bool:
    return redis.zscore(part_of(redis, job_id).inactive_jobs(), job_id) is not None


def submit(redis, count: int = 1, userid: int = 1000, **fields) -> list[int]:
    """Submit jobs the way an ingest worker does (validated, ids assigned, into the inbox)."""
    fields.setdefault("command", ["true"])
    spec = encode(make_jobspec(**fields))
    return accept_jobs(redis, [spec] * count, userid)


def part_of(redis, job_id: int) -> Partition:
    """The partition that holds a job in the store's layout."""
    return read_layout(redis).partition_of(job_id)


def eventlog(redis, job_id: int) -> list[ev.AnyEvent]:
    return [ev.decode_entry(fields) for _, fields in redis.xrange(part_of(redis, job_id).job_eventlog(job_id))]


def names(redis, job_id: int) -> list[str]:
    return [ev.event_name(event) for event in eventlog(redis, job_id)]


def wait_inactive(redis, job_ids, timeout: float = DEADLINE) -> None:
    layout = read_layout(redis)

    def all_inactive() -> bool:
        return all(redis.zscore(layout.partition_of(job_id).inactive_jobs(), job_id) is not None for job_id in job_ids)

    wait_for(all_inactive, timeout, what="jobs to be inactive")


def journal_entries(redis) -> list[jr.JournalEvent]:
    return [jr.decode_journal_entry(entry_id, fields) for entry_id, fields in redis.xrange(LEGACY.journal())]


def assert_journal_matches_eventlogs(redis, part: Partition = LEGACY) -> None:
    """Invariant 1: each job's eventlog equals its journal entries, id for id, field for field,
    over the part of the (partition's) journal still kept (the journal is trimmed at the front)."""
    journal = redis.xrange(part.journal())
    by_job: dict[int, list[tuple[bytes, dict]]] = {}
    for entry_id, fields in journal:
        if fields[b"name"] != b"purge":
            by_job.setdefault(int(fields[b"id"]), []).append((entry_id, fields))
    first = _order(journal[0][0]) if journal else None
    for key in redis.scan_iter(match=part.job_eventlog("*")):
        job_id = int(re.search(r"job:\{?(\d+)\}?:eventlog", key.decode()).group(1))
        stored = [(i, f) for i, f in redis.xrange(key) if first is not None and _order(i) >= first]
        entries = by_job.get(job_id, [])
        assert [entry_id for entry_id, _ in stored] == [entry_id for entry_id, _ in entries], f"job {job_id}"
        for (_, log_fields), (_, journal_fields) in zip(stored, entries, strict=True):
            assert log_fields == {k: v for k, v in journal_fields.items() if k not in (b"v", b"seq", b"id")}
    seqs = [int(fields[b"seq"]) for _, fields in journal]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs))) if seqs else True


def _order(entry_id: bytes) -> tuple[int, int]:
    ms, seq = entry_id.split(b"-")
    return int(ms), int(seq)


def view_seq(redis, part: Partition = LEGACY) -> int | None:
    current = redis.get(part.view_current())
    if current is None:
        return None
    return int(redis.hget(part.view_meta(int(current)), "seq") or -1)


def wait_caught_up(redis, timeout: float = DEADLINE) -> None:
    """Wait until the lister's view of every partition has applied everything in its journal."""
    parts = read_layout(redis).partitions

    def caught_up() -> bool:
        return all(view_seq(redis, part) == jr.journal_head(redis, part)[1] for part in parts)

    wait_for(caught_up, timeout, what="the view to catch up")


def current_view(redis, part: Partition = LEGACY) -> dict:
    """The current generation's content (generation-free names), for comparisons."""
    from jobjournal.lister.naive import dump_view

    return dump_view(redis, part, int(redis.get(part.view_current())))


def naive_view(redis, part: Partition = LEGACY) -> dict:
    """The oracle: a view built from scratch by walking every job's eventlog."""
    from jobjournal.lister.naive import build_naive, dump_view
    from jobjournal.lister.view import delete_generation

    generation = 10**9
    build_naive(redis, part, generation)
    try:
        return dump_view(redis, part, generation)
    finally:
        delete_generation(redis, part, generation)


class SettableClock:
    """A clock for the product's `clock=` parameters that stands still at the time the test
    sets (`now`), so that nothing the test checks depends on how fast the machine runs."""

    def __init__(self, now: float | None = None):
        self.now = time.time() if now is None else now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@contextlib.contextmanager
def recording(redis):
    """Every command Redis runs inside the block, in order, as MONITOR shows them ("SET k v"):
    a list that fills while the block runs. MONITOR shows a transaction as one run, MULTI to
    EXEC, when it executes."""
    end = f"jobjournal-test-end-of-recording-{id(redis)}-{time.monotonic_ns()}"
    commands: list[str] = []
    ready = threading.Event()

    def listen():
        with redis.monitor() as feed:
            ready.set()  # MONITOR is on once monitor() has entered
            for command in feed.listen():
                if end in command["command"]:
                    return
                commands.append(command["command"])

    thread = threading.Thread(target=listen, daemon=True)
    thread.start()
    assert ready.wait(DEADLINE), "MONITOR did not start"
    try:
        yield commands
    finally:
        redis.echo(end)
        thread.join(DEADLINE)
