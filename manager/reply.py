"""The entries of a full-journal reply, as the manager writes them (docs/redis-layout.md §4).

Each job is one **element**: a JSON object `{"id":…,"eventlog":[…],"jobspec":{…},"R":{…}}`
(jobspec and R left out when unknown), built once from bytes the manager already has.

- Version 2 (what a request asks for with `reply_version=2`): `v=2 type=jobs count=N jobs=[…]`,
  about a hundred elements an entry. Redis appends and serves one large entry far more cheaply
  than a hundred small ones: a 100K-job reply took 0.9 s of Redis CPU as one entry a job, and
  0.1 s this way. A job whose eventlog (read back from Redis) is corrupt goes as an unreadable
  element, which the consumer sets aside alone.
- Version 1 (older consumers, whose requests carry no version): `v=1 type=job id eventlog
  jobspec R`, one entry a job.

Entries are appended by lua/append_reply.lua, which keeps its writes out of the AOF and the
replication stream.
"""

from __future__ import annotations

import msgspec
from jobjournal.common.journal import REPLY_SENTINEL_ID as SENTINEL_ID
from jobjournal.common.journal import reply_entry_id
from jobjournal.common.packed import run_script

Fields = tuple
"""An entry's fields: (name, value, name, value, ...)."""

ENTRY_JOBS = 100
"""Elements in one version-2 entry, at most."""
ENTRY_BYTES = 256 * 1024
"""An entry is closed once its elements reach this many bytes (jobs with long eventlogs)."""


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


def entry_id(ordinal: int, version: int) -> str:
    """The id of a reply's `ordinal`th entry (from 1): version-2 entries are numbered
    (common.journal.reply_entry_id); version-1 ones get Redis' ids."""
    return reply_entry_id(ordinal) if version >= 2 else "*"


def sentinel_id(version: int) -> str:
    return SENTINEL_ID if version >= 2 else "*"


def append(redis, script, reply: str, ttl: int, entries: list[tuple[str, Fields]], first: bool) -> None:
    """Append (id, fields) entries to the reply stream with lua/append_reply.lua
    (`Scripts.append_reply`). Unless these are the `first` entries the stream must exist:
    ResponseError GONE if the consumer deleted it (it gave up), BADREPLY if the stream has
    later ids already (someone else wrote to it)."""
    args: list = [ttl, int(first)]
    for entry_id_, fields in entries:
        args += [entry_id_, len(fields) // 2, *fields]
    run_script(redis, script, [reply], args)


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
