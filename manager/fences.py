"""The manager's fence on each partition of a partitioned store.

One manager leads (`keys.manager_lease()`), but a step writes each partition with a script call of
its own, and a script can only check keys of its own slot. So the leader sets every partition's
fence (`Partition.manager_fence()`) to its lease token, with the lease's TTL, before it restores,
and renews the fences with the lease. Every writing script checks its partition's fence: a deposed
leader's write either lands before the new leader's fence (and the new leader's restore, which runs
after fencing, sees it) or is refused with NOTLEADER. In the legacy layout the fence is the lease
itself, and there is nothing to do here.
"""

from __future__ import annotations

import time

from jobjournal.common.errors import LeaseLost
from jobjournal.common.layout import Layout
from jobjournal.common.lease import RENEW_LEASE, Lease
from jobjournal.common.scripts import run_scripts
from jobjournal.common.throttle import Throttle


class Fences:
    def __init__(self, redis, layout: Layout, lease: Lease, clock=time.monotonic):
        self.redis = redis
        self.layout = layout
        self.lease = lease
        self._renewal = Throttle(lease.ttl_ms / 3000, clock)

    @property
    def needed(self) -> bool:
        return not self.layout.legacy

    def take(self) -> None:
        """Set every partition's fence to this manager's token (it has just won the lease)."""
        if not self.needed:
            return
        pipe = self.redis.pipeline(transaction=False)
        for part in self.layout.partitions:
            pipe.set(part.manager_fence(), self.lease.token, px=self.lease.ttl_ms)
        pipe.execute()
        self._renewal.mark()

    def keep(self) -> None:
        """Renew the fences once a third of the TTL has passed; LeaseLost if one is another's."""
        if not self.needed or not self._renewal.due():
            return
        parts = self.layout.partitions
        calls = [(RENEW_LEASE, [part.manager_fence()], [self.lease.token, self.lease.ttl_ms]) for part in parts]
        for part, renewed in zip(parts, run_scripts(self.redis, calls), strict=True):  # one round trip a master
            if not renewed:
                raise LeaseLost(f"the fence of partition {part.index} is another manager's")
