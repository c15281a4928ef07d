"""Posting events: each one to its job's eventlog and to the journal, in one atomic step.

Events are gathered, then written in batches by one Lua script call per batch; one event's
two writes are never split. The manager's inbox cursor travels with the last batch.
"""

from __future__ import annotations

import redis as redis_lib

from common import events, keys
from manager.errors import LeaseLost
from manager.scripts import Scripts

BATCH_EVENTS = 2000
FIXED_KEYS = 6


class EventPoster:
    def __init__(self, redis, scripts: Scripts, lease_token: str, journal_maxlen: int):
        self.redis = redis
        self.scripts = scripts
        self.lease_token = lease_token
        self.journal_maxlen = journal_maxlen
        self._keys: list[str] = []
        self._args: list[bytes | str | int] = []
        self.posted = 0

    def __len__(self) -> int:
        return len(self._keys) // 2

    def add(self, job_id: int, event: events.Event, public: bytes = b"", private: bytes = b"") -> None:
        """Queue an event; `public` is the redacted jobspec (submit) or R (alloc)."""
        self._keys += [keys.job_eventlog(job_id), keys.job_environment(job_id)]
        self._args += [
            job_id,
            events.event_name(event),
            repr(event.timestamp),
            events.event_context(event),
            public,
            private,
        ]
        if len(self) >= BATCH_EVENTS:
            self._write("")

    def flush(self, inbox_cursor: str = "") -> None:
        """Write what is queued; set the inbox cursor with the last batch (if given)."""
        if self._keys or inbox_cursor:
            self._write(inbox_cursor)

    def discard(self) -> None:
        self._keys, self._args = [], []

    def _write(self, inbox_cursor: str) -> None:
        count = len(self)
        fixed = [
            keys.manager_lease(),
            keys.journal(),
            keys.journal_head(),
            keys.manager_inbox_cursor(),
            keys.active_jobs(),
            keys.inactive_jobs(),
        ]
        args = [self.lease_token, inbox_cursor, self.journal_maxlen, count, *self._args]
        try:
            self.scripts.post_events(keys=fixed + self._keys, args=args)
        except redis_lib.ResponseError as err:
            if str(err).startswith("NOTLEADER"):
                raise LeaseLost(str(err)) from err
            raise
        finally:
            self.discard()
        self.posted += count
