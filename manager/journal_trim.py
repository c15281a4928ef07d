"""Where the journal may be trimmed: behind every fresh registered consumer, keeping the last
`keep_s` seconds. Consumers (lister workers; every full-journal request from its snapshot on)
say how far they have read (common/consumers.py)."""

from __future__ import annotations

from jobjournal.common.consumers import forget_consumer, registrations
from jobjournal.common.journal import stream_order
from jobjournal.common.keys import Partition


def trim_floor(redis, part: Partition, now: float, consumer_ttl: float, keep_s: float) -> str:
    """The lowest id to keep of a partition's journal. Stale registrations are dropped on the way."""
    floor = f"{int((now - keep_s) * 1000)}-0"
    for consumer, (cursor, stamp) in registrations(redis, part).items():
        if now - stamp > consumer_ttl:
            forget_consumer(redis, part, consumer)
            continue
        floor = min(floor, _next_id(cursor), key=stream_order)
    return floor


def _next_id(entry_id: str) -> str:
    """The id just after `entry_id`: a consumer at cursor C still needs everything after C."""
    ms, _, seq = entry_id.partition("-")
    return f"{ms}-{int(seq or 0) + 1}"

