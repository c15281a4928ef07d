"""Writing a full journal: a snapshot, every job's element in chunks of entries, then a sentinel.

The snapshot (journal position plus the jobs that exist there) is taken in one atomic
step; each chunk reads eventlogs only up to that position, so an event is either in the
backlog or after the sentinel's cursor in the journal: never both, never neither.
Chunks are written between the manager's other work, so live posting goes on meanwhile.
"""

from __future__ import annotations

import logging

import redis as redis_lib

from jobjournal.common import reply_format as rf
from jobjournal.common.consumers import forget_consumer, register_consumer
from jobjournal.common.events import eventlog_attachments
from jobjournal.common.formats import REPLY_VERSION
from jobjournal.common.keys import Partition
from jobjournal.common.messages import JournalRequest
from jobjournal.common.scripts import run_script
from jobjournal.manager.history import History, eventlog_part
from jobjournal.manager.scripts import APPEND_REPLY

CHUNK_JOBS = 1000
"""Jobs whose eventlogs one chunk reads from Redis."""
CHUNK_REMEMBERED = 5000
"""Jobs one chunk takes from the manager's history (no reads: cheap)."""

log = logging.getLogger("jobjournal.manager")


class Backlog:
    """A full journal of one partition being written for one consumer."""

    def __init__(self, part: Partition, request: JournalRequest, snapshot: tuple[str, int, int],
                 inactive: list[bytes], active: list[bytes], history: History):
        self.part = part
        self.request = request
        self.cursor, self.seq, self.purged = snapshot
        self.job_ids = inactive + active
        self.inactive = len(inactive)
        """job_ids[:inactive] were inactive at the snapshot: their whole eventlog is before the cursor."""
        self.history = history if not (request.allow or request.deny) else History(0)
        self.position = 0
        self.written = 0
        """Jobs written."""
        self.entries = 0
        """Reply entries written."""
        self.version = min(request.reply_version, REPLY_VERSION)

    @property
    def done(self) -> bool:
        return self.position >= len(self.job_ids)

    def write_chunk(self, redis) -> None:
        """Write the next chunk of jobs: those the history holds as they are, the others
        (active jobs, jobs it has not seen) from their eventlogs up to the cursor.

        Built here rather than in a Lua script: the manager's own core does the encoding and
        Redis only serves the reads and appends, which roughly halves Redis' share of a rebuild.
        """
        reply = self.part.journal_reply(self.request.consumer)
        elements, to_read = self._next_chunk()
        read = redis.pipeline(transaction=False)
        for job_id, _ in to_read:
            read.xrange(self.part.job_eventlog(job_id), "-", self.cursor)
        for (job_id, inactive), eventlog in zip(to_read, read.execute() if to_read else [], strict=True):
            if eventlog:  # none: purged since the snapshot
                element, readable = self._from_eventlog(job_id, eventlog)
                elements[job_id] = element
                if inactive and readable:  # its whole eventlog, for good
                    self.history.remember(job_id, element, evict=False)
        found = [element for element in elements.values() if element is not None]
        self.written += len(found)
        write = [(rf.entry_id(self.entries + 1 + i, self.version), fields)
                 for i, fields in enumerate(rf.entries(found, self.version))]
        if self.done:
            write.append((rf.sentinel_id(self.version), self._sentinel()))
        try:  # the TTL, renewed each chunk, takes an abandoned reply away
            append(redis, reply, rf.REPLY_TTL, write, first=self.entries == 0)
        except redis_lib.ResponseError as err:
            log.warning("full journal for %s abandoned: %s", self.request.consumer, err)
            self.position = len(self.job_ids)  # done: a consumer still waiting stalls and asks again
            forget_consumer(redis, self.part, self.request.consumer)  # its registration holds the journal back
            return
        self.entries += len(write)
        if self.done:
            log.info("full journal for %s: %d jobs, cursor %s%s", self.request.consumer, self.written, self.cursor,
                     f" (partition {self.part.index})" if self.part.tag else "")

    def _next_chunk(self) -> tuple[dict[int, bytes | None], list[tuple[int, bool]]]:
        """The next jobs, in order, with their remembered elements (None: not yet known), and
        those to read from Redis, each with whether it was inactive at the snapshot."""
        elements: dict[int, bytes | None] = {}
        to_read: list[tuple[int, bool]] = []
        while self.position < len(self.job_ids) and len(to_read) < CHUNK_JOBS and len(elements) < CHUNK_REMEMBERED:
            job_id, inactive = int(self.job_ids[self.position]), self.position < self.inactive
            elements[job_id] = remembered = self.history.sealed(job_id) if inactive else None
            if remembered is None:
                to_read.append((job_id, inactive))
            self.position += 1
        return elements, to_read

    def _from_eventlog(self, job_id: int, eventlog) -> tuple[bytes, bool]:
        """The job's element and True; an unreadable element and False if an eventlog entry is
        corrupt."""
        allow, deny = self.request.allow, self.request.deny
        try:
            parts = [
                eventlog_part(fields)
                for _, fields in eventlog
                if not (allow or deny) or _allowed(fields[b"name"].decode(), allow, deny)
            ]
        except (KeyError, UnicodeDecodeError) as err:
            log.error("job %d: an eventlog entry lacks a field or is not text (%r)", job_id, err)
            problem = f"job {job_id}: an eventlog entry lacks a field or is not text ({err!r})"
            return rf.unreadable_element(job_id, problem), False
        jobspec, r = eventlog_attachments(fields for _, fields in eventlog)
        element = rf.job_element(job_id, b"[" + b",".join(parts) + b"]", jobspec or b"", r or b"")
        if rf.well_formed(element):
            return element, True
        return rf.unreadable_element(job_id, f"job {job_id}: its eventlog is not valid JSON"), False

    def _sentinel(self) -> rf.Fields:
        partition = self.part.index if self.part.tag else None
        return rf.sentinel_fields(self.version, self.cursor, self.seq, self.written, self.purged, partition)


def _allowed(name: str, allow: list[str], deny: list[str]) -> bool:
    return (not allow or name in allow) and name not in deny


def append(redis, reply: str, ttl: int, entries: list[tuple[str, rf.Fields]], first: bool) -> None:
    """Append (id, fields) entries to the reply stream with lua/append_reply.lua. Unless these
    are the `first` entries the stream must exist: ResponseError GONE if the consumer deleted it
    (it gave up), BADREPLY if the stream has later ids already (someone else wrote to it)."""
    args: list = [ttl, int(first)]
    for entry_id, fields in entries:
        args += [entry_id, len(fields) // 2, *fields]
    run_script(redis, APPEND_REPLY, [reply], args)


def start_backlog(redis, part: Partition, request: JournalRequest, history: History) -> Backlog:
    """Take the snapshot a partition's full journal starts from: the journal head and the job sets,
    in one MULTI/EXEC on the partition's slot (native commands: a Lua script copying 1M ids held
    Redis long enough for leases to expire)."""
    with redis.pipeline(transaction=True) as snapshot:
        snapshot.hmget(part.journal_head(), "last_id", "seq", "purged")
        snapshot.zrange(part.inactive_jobs(), 0, -1)  # by t_inactive
        snapshot.smembers(part.active_jobs())
        (last_id, seq, purged), inactive, active = snapshot.execute()
    cursor = last_id.decode() if last_id else "0-0"
    register_consumer(redis, part, request.consumer, cursor)  # keep the journal from the snapshot on
    return Backlog(part, request, (cursor, int(seq or 0), int(purged or 0)), inactive, sorted(active, key=int), history)
