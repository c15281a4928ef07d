"""Leases: one active holder at a time (the manager, the applying lister); standbys wait."""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
import uuid
from importlib import resources

import redis as redis_lib


def _script(redis, name: str):
    return redis.register_script(resources.files("jobjournal.common").joinpath("lua", f"{name}.lua").read_text())


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

    def release_quietly(self) -> None:
        """Give the lease up if we hold it; never raise (Redis may be the reason we stop)."""
        with contextlib.suppress(redis_lib.RedisError):
            self.release()

    def holder(self) -> str | None:
        value = self.redis.get(self.key)
        return value.decode() if value else None


def run_while_holding(lease: Lease, stop: threading.Event, work, *, active: threading.Event, lost, log) -> None:
    """Call work(stop) whenever this process holds `lease`; stand by while another does.

    `work` returns when `stop` is set, or raises one of `lost` when the lease is gone. Redis
    trouble is waited out: a process under a lease never dies of it. `active` is cleared
    whenever `work` is not running.
    """
    while not stop.is_set():
        try:
            if not lease.try_acquire():
                stop.wait(lease.ttl_ms / 4000)
                continue
            work(stop)
        except lost as err:
            log.warning("standing by: %s", err)
            lease.release_quietly()
        except redis_lib.ConnectionError as err:
            log.warning("Redis unreachable (%s); retrying", err)
            stop.wait(1.0)
        except redis_lib.RedisError as err:
            log.error("Redis refused an operation (%s); starting over in 1s", err)
            lease.release_quietly()
            stop.wait(1.0)
        finally:
            active.clear()
    lease.release_quietly()
