"""The manager lease: one active manager at a time; standbys wait and take over."""

from __future__ import annotations

import os
import socket
import time
import uuid

from common import keys
from manager.scripts import Scripts


class Lease:
    def __init__(self, redis, scripts: Scripts, ttl: float):
        self.redis = redis
        self.scripts = scripts
        self.ttl_ms = max(int(ttl * 1000), 100)
        self.token = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"
        """Says who holds the lease: host, pid, and a random part."""
        self._renewed_at = 0.0

    def try_acquire(self) -> bool:
        if self.redis.set(keys.manager_lease(), self.token, nx=True, px=self.ttl_ms):
            self._renewed_at = time.monotonic()
            return True
        return False

    def renew_if_due(self) -> bool:
        """Renew when a third of the TTL has passed; False when the lease is lost."""
        now = time.monotonic()
        if now - self._renewed_at < self.ttl_ms / 3000:
            return True
        renewed = self.scripts.renew_lease(keys=[keys.manager_lease()], args=[self.token, self.ttl_ms])
        self._renewed_at = now
        return bool(renewed)

    def release(self) -> None:
        self.scripts.release_lease(keys=[keys.manager_lease()], args=[self.token])

    def holder(self) -> str | None:
        value = self.redis.get(keys.manager_lease())
        return value.decode() if value else None
