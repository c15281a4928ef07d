"""The journal stream: its entries, decoded once at the edge, and reading it without a gap.

A journal entry (stream `keys.journal()`, format `formats.JOURNAL_VERSION`) carries `v`, `seq`
(consecutive, from 1), `id` (job id), `name`, `timestamp`, `context`, and `data`: the redacted
jobspec on submit, R on alloc. A `purge` entry says a job left Redis. `keys.journal_head()`
holds the newest entry's `seq` and `last_id` (and `purged`, the jobs purged ever).
"""

from __future__ import annotations

import msgspec

from jobjournal.common import events, keys
from jobjournal.common.errors import CorruptEntry, JobJournalError

PURGE = "purge"
"""The name of a purge entry (not an event: the job left Redis)."""


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

    @property
    def name(self) -> str:
        """The event's name, or 'purge' ('' for an entry that did not decode)."""
        if self.problem:
            return ""
        return PURGE if self.event is None else events.event_name(self.event)


def decode_journal_entry(entry_id: bytes | str, fields: dict[bytes, bytes]) -> JournalEvent:
    """One journal entry; CorruptEntry if it is not one."""
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
    return JournalEvent(text(entry_id), seq, job_id, event, jobspec, r)


def journal_head(redis) -> tuple[str, int]:
    """(last journal id, its seq): where a consumer following 'from now' starts."""
    last_id, seq = redis.hmget(keys.journal_head(), "last_id", "seq")
    return (text(last_id) if last_id else "0-0"), int(seq or 0)


def read_journal(redis, cursor: str, seq: int, count: int = 1000, block_ms: int = 1000) -> list[JournalEvent]:
    """Journal entries after `cursor`, whose first must have seq `seq + 1`. An entry that does not
    decode comes as a JournalEvent with its `problem` (it keeps its place in the sequence).

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


def _corrupt(entry_id, fields: dict, expected_seq: int, problem: str) -> JournalEvent:
    """A stand-in for an entry that does not decode: it keeps its place in the sequence."""
    try:
        seq = int(fields[b"seq"])
    except (KeyError, ValueError):
        seq = expected_seq
    return JournalEvent(text(entry_id), seq, -1, None, problem=problem)


def text(value: bytes | str) -> str:
    """A stream id or field as str."""
    return value.decode() if isinstance(value, bytes) else value
