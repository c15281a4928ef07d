"""The manager's inbox: the one way requests reach the manager, and the one way it reads them.

An inbox entry (stream `keys.manager_inbox()`) has one field, `msg`: a request of
`common.messages` as JSON. Senders: ingest (submissions), `manager.client` (cancel, urgency,
purge, ...), full consumers (journal requests) and rq exec tasks (exec reports).
"""

from __future__ import annotations

from jobjournal.common import keys, messages
from jobjournal.common.errors import CorruptEntry

FIELD = b"msg"


def send(redis, message: messages.Request) -> str:
    """Append a request to the inbox (`redis` may be a pipeline); the entry id as Redis gives it
    (bytes; for a pipeline, the pipeline's reply)."""
    return redis.xadd(keys.manager_inbox(), {FIELD: messages.encode(message)})


def read(redis, after: str, count: int, block_ms: int | None) -> list[tuple[str, dict[bytes, bytes]]]:
    """Inbox entries after `after`, as (entry id, fields); waits up to block_ms (None: not at all)."""
    response = redis.xread({keys.manager_inbox(): after}, count=count, block=block_ms)
    if not response:
        return []
    return [(entry_id.decode(), fields) for entry_id, fields in response[0][1]]


def decode(fields: dict[bytes, bytes]) -> messages.AnyRequest:
    """The request an entry holds; CorruptEntry (with the reason) for one that holds none."""
    if FIELD not in fields:
        raise CorruptEntry("inbox entry has no 'msg' field")
    return messages.decode_request(fields[FIELD])


def trim(redis, cursor: str) -> None:
    """Drop the entries up to and including `cursor` (their effects are posted; they hold
    environments too): a restart reads the inbox after its cursor."""
    ms, _, seq = cursor.partition("-")
    redis.xtrim(keys.manager_inbox(), minid=f"{ms}-{int(seq or 0) + 1}", approximate=False)
