"""The full-journal reply format: how the manager writes a reply's entries and how consumers read them.

A reply (stream `Partition.journal_reply(consumer)`, docs/redis-layout.md §4) holds a backlog, then
one sentinel. Each job is one **element**: a JSON object `{"id":…,"eventlog":[…],"jobspec":{…},
"R":{…}}` (jobspec and R left out when unknown), or `{"id":…,"problem":"…"}` for a job whose
eventlog in Redis is corrupt (the consumer sets that job aside alone).

- Version 2 (`formats.REPLY_VERSION`): `v=2 type=jobs count=N jobs=[…]`, about a hundred
  elements an entry (Redis appends and serves one large entry far more cheaply than a hundred
  small ones: a 100K-job reply took 0.9 s of Redis CPU as one entry a job, 0.1 s this way).
  Entries are numbered: the nth has id `n-0`, and the sentinel the largest id a stream allows,
  so a reader can fetch the nth directly (lister/claiming_reader.py).
- Version 1 (older consumers, whose requests carry no version): `v=1 type=job id eventlog
  jobspec R`, one entry a job, ids given by Redis.

The sentinel: `v type=sentinel cursor seq jobs purged [partition]`: the journal position the
backlog is complete at (the consumer goes on from `cursor`, whose seq is `seq`), the jobs sent, the
jobs purged ever before it, and in a partitioned store the partition's index. A partitioned store
sends one reply per partition, each in that partition's slot.
"""

from __future__ import annotations

import contextlib

import msgspec

from jobjournal.common import events
from jobjournal.common.errors import CorruptEntry
from jobjournal.common.formats import REPLY_VERSION
from jobjournal.common.journal import text

REPLY_TTL = 3600
"""Seconds a reply (and its claim counter) outlives its last write: an abandoned one goes away."""
SENTINEL_ID = "18446744073709551615-0"
"""A version-2 reply's sentinel id: the largest a stream allows, so a reader waiting for an entry
past the last one gets the sentinel."""
ENTRY_JOBS = 100
"""Elements in one version-2 entry, at most."""
ENTRY_BYTES = 256 * 1024
"""An entry is closed once its elements reach this many bytes (jobs with long eventlogs)."""

Fields = tuple
"""An entry's fields as written: (name, value, name, value, ...)."""


# -- writing (the manager)
def job_element(job_id: int, eventlog: bytes, jobspec: bytes, r: bytes) -> bytes:
    """A job's element; `eventlog` is the JSON array of its eventlog entries (see
    manager.history.eventlog_part), `jobspec` and `R` JSON objects or b"" if unknown."""
    element = b'{"id":%d,"eventlog":%s' % (job_id, eventlog)
    if jobspec:
        element += b',"jobspec":' + jobspec
    if r:
        element += b',"R":' + r
    return element + b"}"


def unreadable_element(job_id: int, problem: str) -> bytes:
    """An element in place of a job whose eventlog does not make one (a corrupt entry in Redis):
    the consumer sets that job aside, with `problem` as the reason."""
    return b'{"id":%d,"problem":%s}' % (job_id, msgspec.json.encode(problem))


def well_formed(element: bytes) -> bool:
    """Whether an element is valid JSON (checked for elements built from Redis' eventlogs)."""
    try:
        msgspec.json.decode(element, type=msgspec.Raw)
    except msgspec.DecodeError:
        return False
    return True


def entries(elements: list[bytes], version: int) -> list[Fields]:
    """The entries for elements, in order."""
    if version < 2:
        return [_entry_v1(element) for element in elements]
    out: list[Fields] = []
    batch: list[bytes] = []
    size = 0
    for element in elements:
        batch.append(element)
        size += len(element)
        if len(batch) >= ENTRY_JOBS or size >= ENTRY_BYTES:
            out.append(_entry_v2(batch))
            batch, size = [], 0
    return out + ([_entry_v2(batch)] if batch else [])


def numbered_id(ordinal: int) -> str:
    """The id of a version-2 reply's `ordinal`th entry (from 1; 0 gives the id before the first)."""
    return f"{ordinal}-0"


def entry_id(ordinal: int, version: int) -> str:
    """The id to write a reply's `ordinal`th entry under: version-2 entries are numbered;
    version-1 ones get Redis' ids ('*')."""
    return numbered_id(ordinal) if version >= 2 else "*"


def sentinel_id(version: int = REPLY_VERSION) -> str:
    return SENTINEL_ID if version >= 2 else "*"


def sentinel_fields(
    version: int, cursor: str, seq: int, jobs: int, purged: int, partition: int | None = None
) -> Fields:
    """The sentinel's fields; `partition` (its index) only in a partitioned store."""
    fields = ("v", version, "type", "sentinel", "cursor", cursor, "seq", seq, "jobs", jobs, "purged", purged)
    return fields if partition is None else (*fields, "partition", partition)


def _entry_v2(batch: list[bytes]) -> Fields:
    return ("v", 2, "type", "jobs", "count", len(batch), "jobs", b"[" + b",".join(batch) + b"]")


class _Parts(msgspec.Struct):
    id: int
    eventlog: msgspec.Raw = msgspec.Raw(b"null")
    """null for an unreadable element: the consumer sets the entry aside."""
    jobspec: msgspec.Raw = msgspec.Raw()
    R: msgspec.Raw = msgspec.Raw()


_parts_decoder = msgspec.json.Decoder(_Parts)


def _entry_v1(element: bytes) -> Fields:
    parts = _parts_decoder.decode(element)
    return ("v", 1, "type", "job", "id", parts.id, "eventlog", bytes(parts.eventlog),
            "jobspec", bytes(parts.jobspec), "R", bytes(parts.R))


# -- reading (consumers)
class BacklogJob(msgspec.Struct, frozen=True, gc=False):
    """One job of a full journal's backlog: its eventlog up to the cursor, its redacted
    jobspec and its R (raw JSON; empty if unknown). Decoded straight from a reply entry's
    `jobs` array, where the names are `id` and `eventlog`."""

    job_id: int = msgspec.field(name="id")
    events: list[events.AnyEvent] = msgspec.field(name="eventlog")
    jobspec: msgspec.Raw = msgspec.Raw()
    R: msgspec.Raw = msgspec.Raw()


class Unreadable(msgspec.Struct, frozen=True):
    """A reply entry, or one job of it, that does not decode (corrupt or foreign): set it aside
    and go on."""

    entry_id: str
    problem: str


class Sentinel(msgspec.Struct, frozen=True):
    cursor: str
    seq: int
    jobs: int
    purged: int = 0
    """Jobs purged before the cursor, ever."""
    partition: int = 0
    """The index of the partition the backlog is of."""


Item = BacklogJob | Sentinel | Unreadable
"""What a reply entry holds, once decoded."""

_eventlog_decoder = msgspec.json.Decoder(list[events.AnyEvent])
_jobs_decoder = msgspec.json.Decoder(list[BacklogJob])
_job_decoder = msgspec.json.Decoder(BacklogJob)
_elements_decoder = msgspec.json.Decoder(list[msgspec.Raw])


def decode_reply(entries) -> list[Item]:
    """What reply entries ((id, fields) pairs) hold, in order; an entry that does not decode is
    Unreadable."""
    items: list[Item] = []
    for entry_id_, fields in entries:
        try:
            items += decode_reply_entry(entry_id_, fields)
        except CorruptEntry as err:
            items.append(Unreadable(text(entry_id_), str(err)))
    return items


def decode_reply_entry(entry_id_: bytes | str, fields: dict[bytes, bytes]) -> list[Item]:
    """What one reply entry holds, in order: jobs (a job that does not decode is Unreadable,
    the others still count), or the sentinel. Raises CorruptEntry for an entry that is
    unreadable as a whole."""
    try:
        kind = fields[b"type"]
        if kind == b"jobs":
            return _decode_jobs(text(entry_id_), fields[b"jobs"], int(fields[b"count"]))
        if kind == b"sentinel":
            return [Sentinel(
                text(fields[b"cursor"]), int(fields[b"seq"]), int(fields[b"jobs"]), int(fields.get(b"purged", 0)),
                int(fields.get(b"partition", 0)),
            )]
        if kind == b"job":  # version 1
            return [BacklogJob(
                int(fields[b"id"]),
                _eventlog_decoder.decode(fields[b"eventlog"]),
                msgspec.Raw(fields.get(b"jobspec", b"")),
                msgspec.Raw(fields.get(b"R", b"")),
            )]
    except (KeyError, ValueError, msgspec.DecodeError, msgspec.ValidationError) as err:
        raise CorruptEntry(f"reply entry {text(entry_id_)}: {err!r}") from err
    raise CorruptEntry(f"reply entry {text(entry_id_)}: unknown type {kind!r}")


def entries_of(response) -> list[tuple[bytes, dict[bytes, bytes]]]:
    """The (id, fields) entries of a raw XREAD reply on one stream ([key, entries] pairs, or a map)."""
    if not response:
        return []
    found = next(iter(response.values())) if isinstance(response, dict) else response[0][1]
    return [(entry_id_, dict(zip(flat[::2], flat[1::2], strict=True))) for entry_id_, flat in found]


def is_sentinel(fields: dict[bytes, bytes]) -> bool:
    return fields.get(b"type") == b"sentinel"


def _decode_jobs(entry_id_: str, data: bytes, count: int) -> list[BacklogJob | Unreadable]:
    """A `jobs` array; if it does not decode as a whole, each job on its own."""
    try:
        jobs: list = _jobs_decoder.decode(data)
    except msgspec.ValidationError:
        jobs = [_job_or_unreadable(entry_id_, index, element)
                for index, element in enumerate(_elements_decoder.decode(data))]
    if len(jobs) != count:
        raise ValueError(f"{len(jobs)} jobs where the entry says {count}")
    return jobs


class _Problem(msgspec.Struct):
    """What the manager says of a job it could not make an element for (its eventlog is corrupt)."""

    problem: str = ""


def _job_or_unreadable(entry_id_: str, index: int, element: msgspec.Raw) -> BacklogJob | Unreadable:
    try:
        return _job_decoder.decode(element)
    except msgspec.ValidationError as err:
        with contextlib.suppress(msgspec.ValidationError):
            err = msgspec.json.decode(element, type=_Problem).problem or err
        return Unreadable(entry_id_, f"reply entry {entry_id_}, job {index + 1}: {err}")
