"""The consumer side of the journal: entry formats, full-journal requests, gap-checked reads.

Journal entries (stream `keys.journal()`, format v2) carry `v`, `seq` (consecutive, from 1),
`id` (job id), `name`, `timestamp`, `context`, and `data`: the jobspec on submit, R on alloc. A
`purge` entry says a job left Redis. A full-journal reply (stream `keys.journal_reply(c)`,
format `REPLY_VERSION`) holds `type=jobs` entries, each a JSON array of jobs, then one
`type=sentinel` entry whose `cursor` is where the consumer goes on in the journal. Version-1
replies (one `type=job` entry per job, from an older manager) read as well.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Iterator

import msgspec
from jobjournal.common import events, keys, messages
from jobjournal.common.errors import CorruptEntry, JobJournalError
from jobjournal.common.packed import Pending, pack

JOURNAL_VERSION = 2
REPLY_VERSION = 2
"""The full-journal reply format: the one consumers ask for and the newest a manager writes (2:
a hundred jobs or so an entry, numbered)."""
REPLY_TTL = 3600
"""Seconds a reply (and its claim counter) outlives its last write: an abandoned one goes away."""
REPLY_SENTINEL_ID = "18446744073709551615-0"
"""A version-2 reply's sentinel id: the largest a stream allows, so a reader waiting for an entry
past the last one (lister/split.py claims entries by number) gets the sentinel."""


def reply_entry_id(ordinal: int) -> str:
    """The id of a version-2 reply's `ordinal`th entry (from 1; 0 gives the id before the first):
    entries are numbered, so a reader can fetch the nth directly."""
    return f"{ordinal}-0"

PURGE = "purge"


class JournalGap(JobJournalError):
    """Journal entries between the cursor and the next readable entry were trimmed away."""


class JournalEvent(msgspec.Struct, frozen=True):
    entry_id: str
    seq: int
    job_id: int
    event: events.AnyEvent | None
    """None for a purge entry."""
    jobspec: bytes | None = None
    R: bytes | None = None
    problem: str = ""
    """Why the entry could not be decoded (a corrupt or foreign entry); '' when it is fine."""

    @property
    def is_purge(self) -> bool:
        return self.event is None and not self.problem


class BacklogJob(msgspec.Struct, frozen=True, gc=False):
    """One job of a full journal's backlog: its eventlog up to the cursor, its redacted
    jobspec and its R (raw JSON; empty if unknown). Decoded straight from a reply entry's
    `jobs` array, where the names are `id` and `eventlog`."""

    job_id: int = msgspec.field(name="id")
    events: list[events.AnyEvent] = msgspec.field(name="eventlog")
    jobspec: msgspec.Raw = msgspec.Raw()
    R: msgspec.Raw = msgspec.Raw()


class Unreadable(msgspec.Struct, frozen=True):
    """A reply entry that does not decode (corrupt or foreign): set it aside and go on."""

    entry_id: str
    problem: str


class Restarted(msgspec.Struct, frozen=True):
    """The full journal was requested again: forget the backlog received so far."""


class Sentinel(msgspec.Struct, frozen=True):
    cursor: str
    seq: int
    jobs: int
    purged: int = 0
    """Jobs purged before the cursor, ever."""


_eventlog_decoder = msgspec.json.Decoder(list[events.AnyEvent])
_jobs_decoder = msgspec.json.Decoder(list[BacklogJob])
_job_decoder = msgspec.json.Decoder(BacklogJob)
_elements_decoder = msgspec.json.Decoder(list[msgspec.Raw])


def decode_journal_entry(entry_id: bytes | str, fields: dict[bytes, bytes]) -> JournalEvent:
    try:
        name = fields[b"name"]
        job_id = int(fields[b"id"])
        seq = int(fields[b"seq"])
        event = None
        if name != PURGE.encode():
            event = events.decode_event(name, fields[b"timestamp"], fields[b"context"])
    except (KeyError, ValueError) as err:
        raise CorruptEntry(f"journal entry {_text(entry_id)}: {err!r}") from err
    jobspec, r = events.entry_attachments(fields)
    return JournalEvent(_text(entry_id), seq, job_id, event, jobspec, r)


def decode_reply_entry(entry_id: bytes | str, fields: dict[bytes, bytes]) -> list[BacklogJob | Sentinel | Unreadable]:
    """What one reply entry holds, in order: jobs (a job that does not decode is Unreadable,
    the others still count), or the sentinel. Raises CorruptEntry for an entry that is
    unreadable as a whole."""
    try:
        kind = fields[b"type"]
        if kind == b"jobs":
            return _decode_jobs(_text(entry_id), fields[b"jobs"], int(fields[b"count"]))
        if kind == b"sentinel":
            return [Sentinel(
                _text(fields[b"cursor"]), int(fields[b"seq"]), int(fields[b"jobs"]), int(fields.get(b"purged", 0))
            )]
        if kind == b"job":  # version 1
            return [BacklogJob(
                int(fields[b"id"]),
                _eventlog_decoder.decode(fields[b"eventlog"]),
                msgspec.Raw(fields.get(b"jobspec", b"")),
                msgspec.Raw(fields.get(b"R", b"")),
            )]
    except (KeyError, ValueError, msgspec.DecodeError, msgspec.ValidationError) as err:
        raise CorruptEntry(f"reply entry {_text(entry_id)}: {err!r}") from err
    raise CorruptEntry(f"reply entry {_text(entry_id)}: unknown type {kind!r}")


def _decode_jobs(entry_id: str, data: bytes, count: int) -> list[BacklogJob | Unreadable]:
    """A `jobs` array; if it does not decode as a whole, each job on its own."""
    try:
        jobs: list = _jobs_decoder.decode(data)
    except msgspec.ValidationError:
        jobs = [_job_or_unreadable(entry_id, index, element)
                for index, element in enumerate(_elements_decoder.decode(data))]
    if len(jobs) != count:
        raise ValueError(f"{len(jobs)} jobs where the entry says {count}")
    return jobs


class _Problem(msgspec.Struct):
    """What the manager says of a job it could not make an element for (its eventlog is corrupt)."""

    problem: str = ""


def _job_or_unreadable(entry_id: str, index: int, element: msgspec.Raw) -> BacklogJob | Unreadable:
    try:
        return _job_decoder.decode(element)
    except msgspec.ValidationError as err:
        with contextlib.suppress(msgspec.ValidationError):
            err = msgspec.json.decode(element, type=_Problem).problem or err
        return Unreadable(entry_id, f"reply entry {entry_id}, job {index + 1}: {err}")


def register_consumer(redis, consumer: str, cursor: str) -> None:
    """Tell the manager how far `consumer` has read, so the journal is kept from there on.

    A registration older than the manager's consumer TTL no longer holds anything back."""
    redis.hset(keys.journal_consumers(), consumer, f"{cursor} {time.time():.3f}")


def forget_consumer(redis, consumer: str) -> None:
    redis.hdel(keys.journal_consumers(), consumer)


def new_consumer_name() -> str:
    return uuid.uuid4().hex[:16]


def request_full_journal(redis, consumer: str, allow=(), deny=()) -> None:
    """Ask the manager for a full journal into journal_reply(consumer)."""
    redis.delete(keys.journal_reply(consumer))
    request = messages.JournalRequest(
        consumer=consumer, allow=list(allow), deny=list(deny), reply_version=REPLY_VERSION
    )
    redis.xadd(keys.manager_inbox(), {"msg": messages.encode(request)})


REPLY_READ = 10
"""Reply entries one read asks for: about a thousand jobs."""


def read_reply(redis, consumer: str, after: str, count: int = REPLY_READ, block_ms: int = 1000):
    """Next reply entries after `after`: (last entry id, [BacklogJob | Sentinel | Unreadable, ...])."""
    response = redis.xread({keys.journal_reply(consumer): after}, count=count, block=block_ms)
    if not response:
        return after, []
    entries = response[0][1]
    return _text(entries[-1][0]), decode_reply(entries)


class ReplyReader:
    """Reads a full-journal reply one batch ahead: the next XREAD is on its way while the
    caller works on the batch it has (Redis and the caller work at once). Use it with `with`."""

    def __init__(self, redis, consumer: str, count: int = REPLY_READ, block_ms: int = 1000):
        self._pending = Pending(redis)
        self._key = keys.journal_reply(consumer)
        self._count, self._block_ms = count, block_ms
        self.after = "0-0"
        self._ask()

    def next_batch(self) -> list[BacklogJob | Sentinel | Unreadable]:
        """What the next entries hold ([] if none came within block_ms); nothing more is asked
        for once the sentinel came."""
        [response] = self._pending.replies()
        entries = entries_of(response)
        if entries:
            self.after = _text(entries[-1][0])
        if not (entries and is_sentinel(entries[-1][1])):
            self._ask()
        return decode_reply(entries)

    def _ask(self) -> None:
        command = ("XREAD", "COUNT", self._count, "BLOCK", self._block_ms, "STREAMS", self._key, self.after)
        self._pending.send([pack(command)])

    def __enter__(self) -> ReplyReader:
        return self

    def __exit__(self, *exc) -> None:
        self._pending.close()


def entries_of(response) -> list[tuple[bytes, dict[bytes, bytes]]]:
    """The (id, fields) entries of a raw XREAD reply on one stream ([key, entries] pairs, or a map)."""
    if not response:
        return []
    entries = next(iter(response.values())) if isinstance(response, dict) else response[0][1]
    return [(entry_id, dict(zip(flat[::2], flat[1::2], strict=True))) for entry_id, flat in entries]


def is_sentinel(fields: dict[bytes, bytes]) -> bool:
    return fields.get(b"type") == b"sentinel"


def decode_reply(entries) -> list[BacklogJob | Sentinel | Unreadable]:
    """What reply entries hold, in order; an entry that does not decode is Unreadable."""
    items = []
    for entry_id, fields in entries:
        try:
            items += decode_reply_entry(entry_id, fields)
        except CorruptEntry as err:
            items.append(Unreadable(_text(entry_id), str(err)))
    return items


def journal_head(redis) -> tuple[str, int]:
    """(last journal id, its seq): where a consumer following 'from now' starts."""
    last_id, seq = redis.hmget(keys.journal_head(), "last_id", "seq")
    return (_text(last_id) if last_id else "0-0"), int(seq or 0)


def read_journal(redis, cursor: str, seq: int, count: int = 1000, block_ms: int = 1000):
    """Journal entries after `cursor`, whose first must have seq `seq + 1`.

    Raises JournalGap when entries were trimmed in between (XREAD alone would skip them).
    """
    response = redis.xread({keys.journal(): cursor}, count=count, block=block_ms)
    if not response:
        return []
    entries = []
    for entry_id, fields in response[0][1]:
        try:
            entries.append(decode_journal_entry(entry_id, fields))
        except CorruptEntry as err:
            entries.append(_corrupt(entry_id, fields, seq + len(entries) + 1, str(err)))
    expected = seq + 1
    for entry in entries:
        if entry.seq != expected:
            raise JournalGap(
                f"journal gap after {cursor}: expected seq {expected}, found {entry.seq} "
                f"at {entry.entry_id} (entries were trimmed)"
            )
        expected += 1
    return entries


def follow_full_journal(
    redis, consumer: str | None = None, allow=(), deny=(), block_ms: int = 1000, stall_s: float = 15.0
) -> Iterator[BacklogJob | Sentinel | Restarted | JournalEvent | None]:
    """Everything a full consumer sees: the backlog, the sentinel, then live events, forever.

    Yields None when nothing arrived within `block_ms`, so the caller can look up; it
    stops by leaving the loop. If the reply stalls for `stall_s` (the manager failed over
    mid-backlog), the request is made again and `Restarted` is yielded: drop the backlog
    seen so far. The reply stream is deleted after the sentinel.
    """
    consumer = consumer or new_consumer_name()
    request_full_journal(redis, consumer, allow, deny)
    after = "0-0"
    sentinel = None
    progress = time.monotonic()
    while sentinel is None:
        after, items = read_reply(redis, consumer, after, block_ms=block_ms)
        if items:
            progress = time.monotonic()
        elif time.monotonic() - progress > stall_s:
            redis.delete(keys.journal_reply(consumer))
            consumer = new_consumer_name()  # a late answer to the old request cannot mix in
            request_full_journal(redis, consumer, allow, deny)
            after, progress = "0-0", time.monotonic()
            yield Restarted()
            continue
        else:
            yield None
        for item in items:
            yield item
            if isinstance(item, Sentinel):
                sentinel = item
    redis.delete(keys.journal_reply(consumer))
    forget_consumer(redis, consumer)  # the manager's hold from the snapshot is not needed now
    cursor, seq = sentinel.cursor, sentinel.seq
    while True:
        entries = read_journal(redis, cursor, seq, block_ms=block_ms)
        if not entries:
            yield None
        for entry in entries:
            if _allowed(entry, allow, deny):
                yield entry
            cursor, seq = entry.entry_id, entry.seq


def _corrupt(entry_id, fields: dict, expected_seq: int, problem: str) -> JournalEvent:
    """A stand-in for an entry that does not decode: it keeps its place in the sequence."""
    try:
        seq = int(fields[b"seq"])
    except (KeyError, ValueError):
        seq = expected_seq
    return JournalEvent(_text(entry_id), seq, -1, None, problem=problem)


def _allowed(entry: JournalEvent, allow, deny) -> bool:
    if entry.problem:
        return True
    name = PURGE if entry.event is None else events.event_name(entry.event)
    return (not allow or name in allow or name == PURGE) and name not in deny


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
