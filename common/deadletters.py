"""Setting aside what cannot be handled: one dead-letter stream, readable with redis-cli."""

from __future__ import annotations

import logging

from jobjournal.common import keys

MAXLEN = 10000
EXCERPT_BYTES = 512
"""Of each field of a set-aside entry, the first bytes kept (with its whole length beside it)."""
MAX_FIELDS = 8
MAX_REASON = 1024
MAX_ENTRY_BYTES = MAX_REASON + MAX_FIELDS * (EXCERPT_BYTES + 64) + 256
"""So the stream holds at most MAXLEN x MAX_ENTRY_BYTES (about 50 MB) however large what was set aside."""
log = logging.getLogger("jobjournal")


def set_aside(redis, source: str, entry_id: str, reason: str, fields: dict | None = None) -> None:
    """Record why an entry of `source` was skipped, with a bounded excerpt of its fields, if given:
    the first EXCERPT_BYTES of each of the first MAX_FIELDS, and each one's length."""
    log.error("%s entry %s set aside: %s", source, entry_id or "-", reason[:MAX_REASON])
    record = {b"source": source.encode()[:256], b"entry": entry_id.encode()[:64],
              b"reason": reason.encode()[:MAX_REASON]}
    for key, value in list((fields or {}).items())[:MAX_FIELDS]:
        name = (key if isinstance(key, bytes) else str(key).encode())[:48]
        data = value if isinstance(value, bytes) else str(value).encode()
        record[b"field:" + name] = data[:EXCERPT_BYTES]
        if len(data) > EXCERPT_BYTES:
            record[b"length:" + name] = str(len(data)).encode()
    redis.xadd(keys.dead_letters(), record, maxlen=MAXLEN, approximate=True)
