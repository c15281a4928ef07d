"""Lister workers dividing the partitions among themselves: heartbeats and a sticky assignment.

Each worker heartbeats into `keys.lister_members()` (a sorted set scored by the time of its last
beat); a worker whose beat is older than the lease TTL is gone. The partitions are divided among
the live workers by rendezvous hashing: partition p goes to the worker with the highest
hash(worker, p). When a worker joins or leaves, only the partitions it wins or held move (about
1/N of them); everyone computes the same answer from the same member list, with no coordinator.
Leases (one per partition) make it safe while members disagree for a moment: only the lease
holder applies, and apply_batch.lua refuses a batch from a worker that lost it.
"""

from __future__ import annotations

import hashlib
import os
import socket
import time
import uuid

from jobjournal.common import keys


def worker_name() -> str:
    """A new worker's name: host, pid and a random part (also its lease token)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


class Membership:
    def __init__(self, redis, name: str, ttl: float, clock=time.time):
        self.redis = redis
        self.name = name
        self.ttl = ttl
        self._clock = clock

    def beat(self) -> list[str]:
        """Say this worker is alive, drop workers gone for twice the TTL; the live members."""
        now = self._clock()
        with self.redis.pipeline(transaction=False) as pipe:
            pipe.zadd(keys.lister_members(), {self.name: now})
            pipe.zremrangebyscore(keys.lister_members(), "-inf", now - 2 * self.ttl)
            pipe.zrangebyscore(keys.lister_members(), now - self.ttl, "+inf")
            members = pipe.execute()[-1]
        return sorted(member.decode() for member in members)

    def leave(self) -> None:
        self.redis.zrem(keys.lister_members(), self.name)


def owner(partition: int, members: list[str]) -> str | None:
    """The member that applies a partition: the highest rendezvous hash (None without members)."""
    return max(members, key=lambda member: _weight(member, partition), default=None)


def _weight(member: str, partition: int) -> int:
    digest = hashlib.blake2b(f"{member}\0{partition}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")
