"""Posting events: each one to its job's eventlog and to the journal, in one atomic step.

Events are gathered, then written in batches by one Lua script call per batch; one event's
two writes are never split. The manager's inbox cursor travels with the last batch, and
the lease is renewed before each batch, so a long flush never outlives the lease.
"""

from __future__ import annotations

from collections.abc import Callable

from jobjournal.common import events, keys
from jobjournal.common.formats import JOURNAL_VERSION
from jobjournal.common.scripts import run_script
from jobjournal.manager.history import History
from jobjournal.manager.scripts import POST_EVENTS

BATCH_EVENTS = 2000


class EventPoster:
    def __init__(
        self, redis, lease_token: str, journal_maxlen: int, renew: Callable[[], None], history: History | None = None,
    ):
        self.redis = redis
        self.lease_token = lease_token
        self.journal_maxlen = journal_maxlen
        self.renew = renew
        self.history = history if history is not None else History(0)
        """What was posted, kept for full journals."""
        self._keys: list[str] = []
        self._args: list[bytes | str | int] = []
        self.posted = 0

    def __len__(self) -> int:
        return len(self._keys) // 2

    def add(
        self, job_id: int, event: events.Event, public: bytes = b"", private: bytes = b"", final: bool = False
    ) -> None:
        """Queue an event; `public` is the redacted jobspec (submit) or R (alloc); `final`: the
        job is inactive with this event."""
        name, timestamp, context = events.event_name(event), repr(event.timestamp), events.event_context(event)
        self._keys += [keys.job_eventlog(job_id), keys.job_environment(job_id)]
        self._args += [job_id, name, timestamp, context, public, private]
        self.history.record(job_id, name, timestamp, context, public, final)

    def flush(self, inbox_cursor: str = "") -> None:
        """Write what is queued, in batches; set the inbox cursor with the last one (if given)."""
        queued_keys, queued_args = self._keys, self._args
        self._keys, self._args = [], []
        count = len(queued_keys) // 2
        if not count and not inbox_cursor:
            return
        for start in range(0, max(count, 1), BATCH_EVENTS):
            end = min(start + BATCH_EVENTS, count)
            last = end >= count
            self.renew()
            chunk_keys, chunk_args = queued_keys[2 * start : 2 * end], queued_args[6 * start : 6 * end]
            self._write(chunk_keys, chunk_args, inbox_cursor if last else "")

    def discard(self) -> None:
        self._keys, self._args = [], []

    def _write(self, event_keys: list[str], event_args: list, inbox_cursor: str) -> None:
        count = len(event_keys) // 2
        fixed = [
            keys.manager_lease(),
            keys.journal(),
            keys.journal_head(),
            keys.manager_inbox_cursor(),
            keys.active_jobs(),
            keys.inactive_jobs(),
        ]
        args = [self.lease_token, JOURNAL_VERSION, inbox_cursor, self.journal_maxlen, count, *event_args]
        run_script(self.redis, POST_EVENTS, fixed + event_keys, args)  # LeaseLost if deposed
        self.posted += count
