"""Posting events: each one to its job's eventlog and to its partition's journal, in one atomic step.

Events are gathered, then written per partition in batches by one Lua script call per batch
(post_events.lua); one event's two writes are never split. The manager's inbox cursor travels
with each partition's last batch, and the lease is renewed before each batch, so a long flush
never outlives the lease. A partition no event of a flush touches gets the cursor alone (a call
with no events) at most every CURSOR_EVERY seconds: a restart replays the inbox from the lowest
cursor, and entries after an untouched partition's cursor have no effects there. Every call
checks the partition's fence (in the legacy layout, the manager lease itself), so a deposed
manager writes nowhere.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from jobjournal.common import events
from jobjournal.common.faults import FaultPoints
from jobjournal.common.formats import JOURNAL_VERSION
from jobjournal.common.journal import text
from jobjournal.common.keys import Partition
from jobjournal.common.layout import Layout
from jobjournal.common.scripts import run_scripts
from jobjournal.common.throttle import Throttle
from jobjournal.manager.history import History
from jobjournal.manager.scripts import POST_EVENTS

BATCH_EVENTS = 2000
"""Events of one post_events.lua call, by default (setting `post_batch_events`)."""
CURSOR_EVERY = 1.0
"""Seconds between cursor writes to the partitions a flush does not touch (with one partition:
every flush)."""


class _Queued:
    """One partition's events waiting to be posted."""

    __slots__ = ("keys", "args")

    def __init__(self):
        self.keys: list[str] = []
        self.args: list[bytes | str | int] = []


class EventPoster:
    """Gathers events, then posts them: per partition, one script call per batch; the inbox cursor
    goes with each touched partition's last batch, so each cursor says how far that partition has
    the inbox's effects (and, every CURSOR_EVERY seconds, to the untouched ones)."""

    def __init__(
        self, redis, layout: Layout, lease_token: str, journal_maxlen: int, renew: Callable[[], None],
        history: History | None = None, clock: Callable[[], float] = time.monotonic, *,
        batch_events: int = BATCH_EVENTS, faults: FaultPoints | None = None,
    ):
        self.redis = redis
        self.batch_events = batch_events
        self.faults = faults or FaultPoints()
        self.layout = layout
        self.lease_token = lease_token
        self.journal_maxlen = journal_maxlen
        self.renew = renew
        self.history = history if history is not None else History(0)
        """What was posted, kept for full journals."""
        self._queued: dict[Partition, _Queued] = {}
        self._count = 0
        self.posted = 0
        self.frees_queued = False
        """A `free` event is queued (cores given back that a later allocation may take)."""
        self.set_aside: list[tuple[int, str]] = []
        """Jobs post_events.lua set aside (their own keys are wrong: none of their events was
        written), with why, until the caller takes them (`take_set_aside`)."""
        self._cursor_everywhere = Throttle(0 if layout.size == 1 else CURSOR_EVERY, clock)
        self._places: dict[int, tuple[Partition, str, str]] = {}
        """Each active job's partition, eventlog key and environment key, found at its first event
        (a job never moves) and dropped with its last: hashing the id and naming its keys at every
        event cost about a tenth of the manager's time."""

    def __len__(self) -> int:
        return self._count

    def cursor_everywhere(self) -> None:
        """Write the next cursor to every partition: an effect written outside the poster (a purge,
        a full journal started) touched partitions it does not know of."""
        self._cursor_everywhere.reset()

    def add(
        self, job_id: int, event: events.Event, public: bytes = b"", private: bytes = b"", final: bool = False
    ) -> None:
        """Queue an event; `public` is the redacted jobspec (submit) or R (alloc); `final`: the
        job is inactive with this event."""
        name, context = events.event_name(event), events.event_context(event)
        timestamp = repr(event.timestamp)
        part, eventlog, environment = self._places.get(job_id) or self._place(job_id)
        if final:
            del self._places[job_id]
        queued = self._queued.get(part)
        if queued is None:
            queued = self._queued[part] = _Queued()
        queued.keys += [eventlog, environment]
        queued.args += [job_id, name, timestamp, context, public, private]
        self._count += 1
        self.frees_queued = self.frees_queued or name == "free"
        self.history.record(job_id, name, timestamp, context, public, final)

    def _place(self, job_id: int) -> tuple[Partition, str, str]:
        part = self.layout.partition_of(job_id)
        place = self._places[job_id] = (part, part.job_eventlog(job_id), part.job_environment(job_id))
        return place

    def forget(self, job_id: int) -> None:
        """A job the manager no longer runs (set aside) before its last event."""
        self._places.pop(job_id, None)

    def flush(self, inbox_cursor: str = "") -> None:
        """Write what is queued, in batches; set every partition's inbox cursor with its last batch
        (if given)."""
        queued, self._queued, self._count, self.frees_queued = self._queued, {}, 0, False
        last_batches = []
        everywhere = inbox_cursor and self._cursor_everywhere.due()
        for part in self.layout.partitions if everywhere else list(queued):
            events_of = queued.get(part) or _Queued()
            last_batches.append(self._flush_partition(part, events_of.keys, events_of.args, inbox_cursor))
        if last_batches:
            self.renew()
            self._write_all(last_batches)

    def _flush_partition(self, part: Partition, queued_keys: list[str], queued_args: list, inbox_cursor: str):
        """Write a partition's batches but the last (a partition with more than `batch_events`
        events); the last one's call (with the cursor), for `_write_all`."""
        count = len(queued_keys) // 2
        starts = range(0, max(count, 1), self.batch_events)
        for start in starts[:-1]:
            self.renew()
            end = start + self.batch_events
            self._write_all([self._call(part, queued_keys[2 * start : 2 * end], queued_args[6 * start : 6 * end], "")])
        start = starts[-1]
        return self._call(part, queued_keys[2 * start :], queued_args[6 * start :], inbox_cursor)

    def take_set_aside(self) -> list[tuple[int, str]]:
        taken, self.set_aside = self.set_aside, []
        return taken

    def discard(self) -> None:
        self._queued, self._count, self.frees_queued = {}, 0, False

    def _write_all(self, calls: list) -> None:
        """post_events.lua calls, on their partitions, in one round trip per master (LeaseLost if
        this manager was deposed)."""
        replies = run_scripts(self.redis, [(POST_EVENTS, call_keys, args) for call_keys, args, _ in calls])
        self.posted += sum(count for _, _, count in calls)
        for reply in replies:
            self.set_aside += [(int(job), text(why)) for job, why in zip(reply[2::2], reply[3::2], strict=True)]
        self.faults.reached("manager.posted")

    def _call(self, part: Partition, event_keys: list[str], event_args: list, inbox_cursor: str) -> tuple:
        """One post_events.lua call: (keys, args, events)."""
        count = len(event_keys) // 2
        fixed = [
            part.manager_fence(),
            part.journal(),
            part.journal_head(),
            part.inbox_cursor(),
            part.active_jobs(),
            part.inactive_jobs(),
        ]
        args = [self.lease_token, JOURNAL_VERSION, inbox_cursor, self.journal_maxlen, count, *event_args]
        return fixed + event_keys, args, count
