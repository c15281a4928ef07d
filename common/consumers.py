"""The journal's consumer registry: how far each consumer has read, so the journal is kept for it.

Each partition's `Partition.journal_consumers()` is a hash: consumer name -> "<cursor> <unix
time>". Lister workers register as they apply; every full-journal request is registered at its
snapshot (by the manager) until its consumer has the sentinel. The manager trims a partition's
journal behind its slowest registration younger than `journal_consumer_ttl`
(manager/journal_trim.py).
"""

from __future__ import annotations

import time
import uuid

from jobjournal.common.keys import Partition


def register_consumer(redis, part: Partition, consumer: str, cursor: str) -> None:
    """Tell the manager how far `consumer` has read a partition's journal, so it is kept from there on.

    A registration older than the manager's consumer TTL no longer holds anything back."""
    redis.hset(part.journal_consumers(), consumer, f"{cursor} {time.time():.3f}")


def forget_consumer(redis, part: Partition, consumer: str) -> None:
    redis.hdel(part.journal_consumers(), consumer)


def registrations(redis, part: Partition) -> dict[str, tuple[str, float]]:
    """Every registration on a partition: consumer -> (cursor, when it was written)."""
    out = {}
    for consumer, value in redis.hgetall(part.journal_consumers()).items():
        cursor, _, stamp = value.decode().partition(" ")
        out[consumer.decode()] = (cursor, float(stamp or 0))
    return out


def new_consumer_name() -> str:
    return uuid.uuid4().hex[:16]
