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
from jobjournal.common.packed import is_cluster, reads

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
    seq: int | None
    """Its place in the partition's sequence (None only for a stand-in that has none, before checking)."""
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


def journal_heads(redis, layout) -> dict[Partition, tuple[str, int]]:
    """`journal_head` of every partition of `layout`, in one round trip per node."""
    found = reads(redis, [("HMGET", part.journal_head(), "last_id", "seq") for part in layout.partitions])
    return {part: ((text(last_id) if last_id else "0-0"), int(seq or 0))
            for part, (last_id, seq) in zip(layout.partitions, found, strict=True)}


def advance(positions: dict[Partition, tuple[str, int]], entries: list[JournalEvent]) -> None:
    """Move each partition's place in `positions` past the entries read from it."""
    by_index = {part.index: part for part in positions}
    for entry in entries:
        positions[by_index[entry.partition]] = (entry.entry_id, entry.seq)


def read_journal(
    redis, part: Partition, cursor: str, seq: int, count: int = 1000, block_ms: int | None = 1000
) -> list[JournalEvent]:
    """A partition's journal entries after `cursor`, whose first must have seq `seq + 1`; waits up
    to block_ms for one (None: not at all). An entry that does not decode comes as a JournalEvent
    with its `problem` (it keeps its place in the sequence).

    Raises JournalGap when entries were trimmed in between (XREAD alone would skip them).
    """
    response = redis.xread({part.journal(): cursor}, count=count, block=block_ms)
    return checked_entries(part, cursor, seq, response[0][1] if response else [], lambda: _probe(redis, part))


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
    return _checked_all(redis, positions, found)


def _poll_journals(redis, positions: dict[Partition, tuple[str, int]], count: int, block_ms: int) -> list[JournalEvent]:
    deadline = time.monotonic() + block_ms / 1000
    pause = POLL_MS
    while True:
        pipe = redis.pipeline(transaction=False)
        for part, (cursor, _) in positions.items():
            pipe.xread({part.journal(): cursor}, count=count)
        found = {part: response[0][1] for part, response in zip(positions, pipe.execute(), strict=True) if response}
        if found or time.monotonic() >= deadline:
            return _checked_all(redis, positions, found)
        time.sleep(min(pause, max(0.0, deadline - time.monotonic()) * 1000 + 1) / 1000)
        pause = min(2 * pause, POLL_MAX_MS)


def _checked_all(
    redis, positions: dict[Partition, tuple[str, int]], found: dict[Partition, list]
) -> list[JournalEvent]:
    entries: list[JournalEvent] = []
    for part, raw in found.items():
        cursor, seq = positions[part]
        entries += checked_entries(part, cursor, seq, raw, lambda part=part: _probe(redis, part))
    return entries


def checked_entries(part: Partition, cursor: str, seq: int, raw: list, probe) -> list[JournalEvent]:
    """Raw (id, fields) entries of a partition's journal read after (cursor, seq), decoded and
    checked: each must carry the next seq. One that does not is a gap (JournalGap: entries were
    trimmed) or an entry that is not the manager's. `probe()` tells which, when it is needed:
    (the journal's oldest entry id, the head's seq).

    An entry that is not the manager's (a `seq` it never wrote, a `seq` gone back, none at all)
    comes with its `problem` and does not take a place in the sequence: it is set aside once and
    the reader goes on past it. An entry that does not decode but has the next seq keeps its place."""
    entries = []
    expected = seq + 1
    for entry_id, fields in raw:
        entry = _decoded(entry_id, fields, part.index)
        if entry.seq == expected:
            entries.append(entry)
            expected += 1
        elif entry.seq is not None and _trimmed_after(cursor, entry.seq, expected, probe):
            where = f"partition {part.index}'s journal" if part.tag else "journal"
            raise JournalGap(
                f"{where} gap after {cursor}: expected seq {expected}, found {entry.seq} "
                f"at {entry.entry_id} (entries were trimmed)",
                part.index,
            )
        else:
            found = "no seq" if entry.seq is None else f"seq {entry.seq}"
            problem = f"not the manager's: {found} where seq {expected} was due; {entry.problem or 'set aside'}"
            entries.append(JournalEvent(entry.entry_id, expected - 1, -1, None, problem=problem, partition=part.index))
    return entries


def _trimmed_after(cursor: str, found: int, expected: int, probe) -> bool:
    """Whether an entry with seq `found` where `expected` was due may follow trimmed entries: the
    manager wrote that seq (the head is at it or past it), it is ahead, and the journal no longer
    holds the cursor (trimming takes the oldest entries)."""
    if found < expected:
        return False
    oldest, head_seq = probe()
    return found <= head_seq and (oldest is None or stream_order(oldest) > stream_order(cursor))


def _probe(redis, part: Partition) -> tuple[str | None, int]:
    with redis.pipeline(transaction=False) as pipe:
        pipe.xrange(part.journal(), count=1)
        pipe.hget(part.journal_head(), "seq")
        oldest, head_seq = pipe.execute()
    return (text(oldest[0][0]) if oldest else None), int(head_seq or 0)


def _decoded(entry_id, fields: dict, partition: int) -> JournalEvent:
    """The entry, or a stand-in with its `problem` (and its seq, None if it has none) if it does not decode."""
    try:
        return decode_journal_entry(entry_id, fields, partition)
    except CorruptEntry as err:
        try:
            seq = int(fields[b"seq"])
        except (KeyError, ValueError):
            seq = None
        return JournalEvent(text(entry_id), seq, -1, None, problem=str(err), partition=partition)


def stream_order(entry_id: str) -> tuple[int, int]:
    """A stream entry id as a sortable (milliseconds, sequence) pair."""
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


def text(value: bytes | str) -> str:
    """A stream id or field as str."""
    return value.decode() if isinstance(value, bytes) else value
