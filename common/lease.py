"""Leases: one active holder at a time (the manager, the applying lister); standbys wait."""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
import uuid

import redis as redis_lib

from jobjournal.common.errors import LeaseLost, StaleView
from jobjournal.common.scripts import Script, run_script
from jobjournal.common.throttle import Throttle

RENEW_LEASE = Script("jobjournal.common", "renew_lease")
RELEASE_LEASE = Script("jobjournal.common", "release_lease")


class Lease:
    def __init__(self, redis, key: str, ttl: float, clock=time.monotonic):
        self.redis = redis
        self.key = key
        self.ttl_ms = max(int(ttl * 1000), 100)
        self.token = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"
        """Says who holds the lease: host, pid, and a random part."""
        self._renewal = Throttle(self.ttl_ms / 3000, clock)
        """Renewed once a third of the TTL has passed."""

    def try_acquire(self) -> bool:
        if self.redis.set(self.key, self.token, nx=True, px=self.ttl_ms):
            self._renewal.mark()
            return True
        return False

    def renew_if_due(self) -> bool:
        """Renew when a third of the TTL has passed; False when the lease is lost. A renewal that
        failed (lost, or a Redis error) is not counted as one: the next call tries again."""
        if not self._renewal.due():
            return True
        try:
            renewed = bool(run_script(self.redis, RENEW_LEASE, [self.key], [self.token, self.ttl_ms]))
        except BaseException:
            self._renewal.reset()
            raise
        if not renewed:
            self._renewal.reset()
        return renewed

    def keep(self, what: str = "the lease") -> None:
        """Renew if due; LeaseLost (naming `what`) when the lease is gone."""
        if not self.renew_if_due():
            raise LeaseLost(f"{what} expired before renewal")

    def release(self) -> None:
        run_script(self.redis, RELEASE_LEASE, [self.key], [self.token])

    def release_quietly(self) -> None:
        """Give the lease up if we hold it; never raise (Redis may be the reason we stop)."""
        with contextlib.suppress(redis_lib.RedisError):
            self.release()

    def holder(self) -> str | None:
        value = self.redis.get(self.key)
        return value.decode() if value else None


def run_while_holding(lease: Lease, stop: threading.Event, work, *, active: threading.Event, log) -> None:
    """Call work(stop) whenever this process holds `lease`; stand by while another does.

    `work` returns when `stop` is set, or raises LeaseLost when the lease is gone (or StaleView
    when another holder moved on). Redis trouble is waited out: a process under a lease never
    dies of it. `active` is cleared whenever `work` is not running.
    """
    waiting_for = None
    while not stop.is_set():
        try:
            if not lease.try_acquire():
                holder = lease.holder()
                if holder != waiting_for and holder is not None:
                    log.info("standing by: %s is held by %s", lease.key, holder)
                waiting_for = holder
                stop.wait(lease.ttl_ms / 4000)
                continue
            waiting_for = None
            work(stop)
        except (LeaseLost, StaleView) as err:
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
