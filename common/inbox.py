"""The manager's inbox: the one way requests reach the manager, and the one way it reads them.

An inbox entry (stream `keys.manager_inbox()`) has one field, `msg`: a request of
`common.messages` as JSON. Senders: ingest (submissions), `manager.client` (cancel, urgency,
purge, ...), full consumers (journal requests) and rq exec tasks (exec reports).
"""

from __future__ import annotations

from jobjournal.common import keys, messages
from jobjournal.common.errors import CorruptEntry, JobJournalError

FIELD = b"msg"


def send(redis, message: messages.Request) -> str:
    """Append a request to the inbox (`redis` may be a pipeline); the entry id as Redis gives it
    (bytes; for a pipeline, the pipeline's reply)."""
    return redis.xadd(keys.manager_inbox(), {FIELD: messages.encode(message)})


class NotOnDisk(JobJournalError):
    """A request is in the inbox, but Redis did not confirm it on disk in time (or cannot)."""


def send_on_disk(redis, message: messages.Request, timeout_s: float, what: str = "the request") -> str:
    """`send`, then wait until the entry is in the AOF on disk (WAITAOF 1 0, Redis 7.2+; on the same
    connection as the write, which is what WAITAOF waits for). NotOnDisk when it is not within
    `timeout_s`, or the server cannot say (no WAITAOF, no AOF): the entry is written all the same."""
    with redis.pipeline(transaction=False) as pipe:
        pipe.xadd(keys.manager_inbox(), {FIELD: messages.encode(message)})
        pipe.execute_command("WAITAOF", 1, 0, max(1, int(timeout_s * 1000)))
        entry_id, confirmed = pipe.execute(raise_on_error=False)
    if isinstance(entry_id, Exception):
        raise entry_id
    if isinstance(confirmed, Exception):
        raise NotOnDisk(f"{what} written, but Redis cannot confirm it on disk: {_why(confirmed)}") from confirmed
    if confirmed[0] < 1:
        raise NotOnDisk(f"{what} written, but not on disk within {timeout_s:g}s: a Redis crash now could lose it")
    return entry_id


def on_disk_refusal(redis) -> str | None:
    """Why this server cannot confirm a write on disk (None: it can): WAITAOF needs Redis 7.2 or
    newer with appendonly on."""
    server, persistence = redis.info("server"), redis.info("persistence")
    version = tuple(int(part) for part in str(server.get("redis_version", "0")).split(".")[:2])
    if version < (7, 2):
        found = server["redis_version"]
        return f"JOBJOURNAL_SUBMIT_ON_DISK_S needs Redis 7.2 or newer (WAITAOF); this server is {found}"
    if not int(persistence.get("aof_enabled", 0)):
        return "JOBJOURNAL_SUBMIT_ON_DISK_S needs appendonly yes on the server (WAITAOF waits for the AOF)"
    return None


def _why(err: Exception) -> str:
    text = str(err)
    if "unknown command" in text.lower():
        return "WAITAOF needs Redis 7.2 or newer (JOBJOURNAL_SUBMIT_ON_DISK_S)"
    return text


def read(redis, after: str, count: int, block_ms: int | None) -> list[tuple[str, dict[bytes, bytes]]]:
    """Inbox entries after `after`, as (entry id, fields); waits up to block_ms (None: not at all)."""
    response = redis.xread({keys.manager_inbox(): after}, count=count, block=block_ms)
    if not response:
        return []
    return [(entry_id.decode(), fields) for entry_id, fields in response[0][1]]


def decode(fields: dict[bytes, bytes], max_bytes: int | None = None) -> messages.AnyRequest:
    """The request an entry holds; CorruptEntry (with the reason) for one that holds none, or one
    longer than `max_bytes` (`entry_limit`)."""
    if FIELD not in fields:
        raise CorruptEntry("inbox entry has no 'msg' field")
    data = fields[FIELD]
    if max_bytes is not None and len(data) > max_bytes:
        raise CorruptEntry(f"a request of {len(data):,} bytes: the limit is {max_bytes:,} "
                           "(JOBJOURNAL_MAX_REQUEST_BYTES of jobspecs, and room for their ids)")
    return messages.decode_request(data)


JOB_ROOM = 128
"""Bytes of a submission around each job's jobspec: its id, uid, time, keys and punctuation."""
ENVELOPE_ROOM = 65536
"""Bytes of a request around its jobs: its tag, reply list, user, proof, seal."""


def entry_limit(max_request_bytes: int) -> int:
    """The longest inbox request the manager decodes: a submission of max_request_bytes of
    jobspecs (every service must have the same JOBJOURNAL_MAX_REQUEST_BYTES), with room for each
    of its messages.MAX_IDS jobs and for its envelope."""
    return max_request_bytes + messages.MAX_IDS * JOB_ROOM + ENVELOPE_ROOM


def trim(redis, cursor: str) -> None:
    """Drop the entries up to and including `cursor` (their effects are posted; they hold
    environments too): a restart reads the inbox after its cursor."""
    ms, _, seq = cursor.partition("-")
    redis.xtrim(keys.manager_inbox(), minid=f"{ms}-{int(seq or 0) + 1}", approximate=False)
