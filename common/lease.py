"""Leases: one active holder at a time (the manager, the applying lister); standbys wait."""

from __future__ import annotations

import os
import socket
import time
import uuid
from importlib import resources


def _script(redis, name: str):
    return redis.register_script(resources.files("common").joinpath("lua", f"{name}.lua").read_text())


class Lease:
    def __init__(self, redis, key: str, ttl: float):
        self.redis = redis
        self.key = key
        self.ttl_ms = max(int(ttl * 1000), 100)
        self.token = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"
        """Says who holds the lease: host, pid, and a random part."""
        self._renew = _script(redis, "renew_lease")
        self._release = _script(redis, "release_lease")
        self._renewed_at = 0.0

    def try_acquire(self) -> bool:
        if self.redis.set(self.key, self.token, nx=True, px=self.ttl_ms):
            self._renewed_at = time.monotonic()
            return True
        return False

    def renew_if_due(self) -> bool:
        """Renew when a third of the TTL has passed; False when the lease is lost."""
        now = time.monotonic()
        if now - self._renewed_at < self.ttl_ms / 3000:
            return True
        renewed = self._renew(keys=[self.key], args=[self.token, self.ttl_ms])
        self._renewed_at = now
        return bool(renewed)

    def release(self) -> None:
        self._release(keys=[self.key], args=[self.token])

    def holder(self) -> str | None:
        value = self.redis.get(self.key)
        return value.decode() if value else None
