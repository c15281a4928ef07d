"""Where the journal may be trimmed: behind every fresh registered consumer, keeping the last
`keep_s` seconds. Consumers (lister workers; every full-journal request from its snapshot on)
say how far they have read (common/consumers.py)."""

from __future__ import annotations

from jobjournal.common.consumers import forget_consumer, registrations


def trim_floor(redis, now: float, consumer_ttl: float, keep_s: float) -> str:
    """The lowest journal id to keep. Stale registrations are dropped on the way."""
    floor = f"{int((now - keep_s) * 1000)}-0"
    for consumer, (cursor, stamp) in registrations(redis).items():
        if now - stamp > consumer_ttl:
            forget_consumer(redis, consumer)
            continue
        floor = min(floor, _next_id(cursor), key=_order)
    return floor


def _next_id(entry_id: str) -> str:
    """The id just after `entry_id`: a consumer at cursor C still needs everything after C."""
    ms, _, seq = entry_id.partition("-")
    return f"{ms}-{int(seq or 0) + 1}"


def _order(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)
