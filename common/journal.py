"""The journal stream: its entries, decoded once at the edge, and reading it without a gap.

Each partition has its journal (stream `Partition.journal()`, format `formats.JOURNAL_VERSION`).
An entry carries `v`, `seq` (consecutive within the partition, from 1), `id` (job id), `name`,
`timestamp`, `context`, and `data`: the redacted jobspec on submit, R on alloc. A `purge` entry
says a job left Redis. `Partition.journal_head()` holds the newest entry's `seq` and `last_id`
(and `purged`, the jobs purged ever). Order holds within a partition (a job never leaves its
own); across partitions entry ids give only an approximate order.
"""

from __future__ import annotations

import time

import msgspec

from jobjournal.common import events
from jobjournal.common.errors import CorruptEntry, JobJournalError
from jobjournal.common.keys import Partition
from jobjournal.common.packed import is_cluster

POLL_MS = 20
"""On Redis Cluster, where one XREAD cannot wait on several slots, how long a reader of several
partitions sleeps when none had anything: first POLL_MS, doubling up to POLL_MAX_MS while they stay
quiet (an idle reader costs the masters a few reads a second, not fifty; a busy one stays at POLL_MS)."""
POLL_MAX_MS = 160

PURGE = "purge"
"""The name of a purge entry (not an event: the job left Redis)."""


class JournalGap(JobJournalError):
    """Journal entries between the cursor and the next readable entry were trimmed away (in one
    partition: `partition`, its index)."""

    def __init__(self, message: str, partition: int = 0):
        super().__init__(message)
        self.partition = partition


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
    partition: int = 0
    """The index of the partition whose journal holds the entry."""

    @property
    def is_purge(self) -> bool:
        return self.event is None and not self.problem

    @property
    def name(self) -> str:
        """The event's name, or 'purge' ('' for an entry that did not decode)."""
        if self.problem:
            return ""
        return PURGE if self.event is None else events.event_name(self.event)


def decode_journal_entry(entry_id: bytes | str, fields: dict[bytes, bytes], partition: int = 0) -> JournalEvent:
    """One journal entry of a partition; CorruptEntry if it is not one."""
    try:
        name = fields[b"name"]
        job_id = int(fields[b"id"])
        seq = int(fields[b"seq"])
        event = None
        if name != PURGE.encode():
            event = events.decode_event(name, fields[b"timestamp"], fields[b"context"])
    except (KeyError, ValueError) as err:
        raise CorruptEntry(f"journal entry {text(entry_id)}: {err!r}") from err
    jobspec, r = events.entry_attachments(fields)
    return JournalEvent(text(entry_id), seq, job_id, event, jobspec, r, partition=partition)


def journal_head(redis, part: Partition) -> tuple[str, int]:
    """(last journal id, its seq) of a partition: where a consumer following 'from now' starts."""
    last_id, seq = redis.hmget(part.journal_head(), "last_id", "seq")
    return (text(last_id) if last_id else "0-0"), int(seq or 0)


def read_journal(
    redis, part: Partition, cursor: str, seq: int, count: int = 1000, block_ms: int | None = 1000
) -> list[JournalEvent]:
    """A partition's journal entries after `cursor`, whose first must have seq `seq + 1`; waits up
    to block_ms for one (None: not at all). An entry that does not decode comes as a JournalEvent
    with its `problem` (it keeps its place in the sequence).

    Raises JournalGap when entries were trimmed in between (XREAD alone would skip them).
    """
    response = redis.xread({part.journal(): cursor}, count=count, block=block_ms)
    return checked_entries(part, cursor, seq, response[0][1] if response else [])


def read_journals(
    redis, positions: dict[Partition, tuple[str, int]], count: int = 1000, block_ms: int = 1000
) -> list[JournalEvent]:
    """Entries of several partitions' journals, each after its (cursor, seq), partition by
    partition; waits up to block_ms for one. JournalGap names the partition with a gap.

    On a standalone Redis one XREAD waits on every journal; on a cluster, where it cannot, the
    partitions are read in one pipeline without waiting, and the reader sleeps (POLL_MS, doubling
    to POLL_MAX_MS) while none has anything."""
    if len(positions) == 1:
        [(part, (cursor, seq))] = positions.items()
        return read_journal(redis, part, cursor, seq, count, block_ms)
    if not positions:
        return []
    if is_cluster(redis):
        return _poll_journals(redis, positions, count, block_ms)
    by_key = {part.journal(): part for part in positions}
    response = redis.xread({part.journal(): cursor for part, (cursor, _) in positions.items()}, count=count,
                           block=block_ms)
    found = {by_key[text(key)]: raw for key, raw in response or []}
    return _checked_all(positions, found)


def _poll_journals(redis, positions: dict[Partition, tuple[str, int]], count: int, block_ms: int) -> list[JournalEvent]:
    deadline = time.monotonic() + block_ms / 1000
    pause = POLL_MS
    while True:
        pipe = redis.pipeline(transaction=False)
        for part, (cursor, _) in positions.items():
            pipe.xread({part.journal(): cursor}, count=count)
        found = {part: response[0][1] for part, response in zip(positions, pipe.execute(), strict=True) if response}
        if found or time.monotonic() >= deadline:
            return _checked_all(positions, found)
        time.sleep(min(pause, max(0.0, deadline - time.monotonic()) * 1000 + 1) / 1000)
        pause = min(2 * pause, POLL_MAX_MS)


def _checked_all(positions: dict[Partition, tuple[str, int]], found: dict[Partition, list]) -> list[JournalEvent]:
    entries: list[JournalEvent] = []
    for part, raw in found.items():
        cursor, seq = positions[part]
        entries += checked_entries(part, cursor, seq, raw)
    return entries


def checked_entries(part: Partition, cursor: str, seq: int, raw: list) -> list[JournalEvent]:
    """Raw (id, fields) entries of a partition's journal read after (cursor, seq), decoded and
    checked for a gap (JournalGap)."""
    entries = []
    for entry_id, fields in raw:
        try:
            entries.append(decode_journal_entry(entry_id, fields, part.index))
        except CorruptEntry as err:
            entries.append(_corrupt(entry_id, fields, seq + len(entries) + 1, str(err), part.index))
    expected = seq + 1
    for entry in entries:
        if entry.seq != expected:
            where = f"partition {part.index}'s journal" if part.tag else "journal"
            raise JournalGap(
                f"{where} gap after {cursor}: expected seq {expected}, found {entry.seq} "
                f"at {entry.entry_id} (entries were trimmed)",
                part.index,
            )
        expected += 1
    return entries


def _corrupt(entry_id, fields: dict, expected_seq: int, problem: str, partition: int) -> JournalEvent:
    """A stand-in for an entry that does not decode: it keeps its place in the sequence."""
    try:
        seq = int(fields[b"seq"])
    except (KeyError, ValueError):
        seq = expected_seq
    return JournalEvent(text(entry_id), seq, -1, None, problem=problem, partition=partition)


def stream_order(entry_id: str) -> tuple[int, int]:
    """A stream entry id as a sortable (milliseconds, sequence) pair."""
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


def text(value: bytes | str) -> str:
    """A stream id or field as str."""
    return value.decode() if isinstance(value, bytes) else value
