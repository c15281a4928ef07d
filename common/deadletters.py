"""Setting aside what cannot be handled: one dead-letter stream, readable with redis-cli."""

from __future__ import annotations

import logging

from jobjournal.common import keys

MAXLEN = 10000
log = logging.getLogger("jobjournal")


def set_aside(redis, source: str, entry_id: str, reason: str, fields: dict | None = None) -> None:
    """Record why an entry of `source` was skipped (with copies of its fields, if given)."""
    log.error("%s entry %s set aside: %s", source, entry_id or "-", reason)
    record = {b"source": source.encode(), b"entry": entry_id.encode(), b"reason": reason.encode()}
    record.update({b"field:" + key: value for key, value in (fields or {}).items()})
    redis.xadd(keys.dead_letters(), record, maxlen=MAXLEN, approximate=True)
