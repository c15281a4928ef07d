"""The lister worker: applies the journals of the partitions it holds, beside other workers.

Workers heartbeat and divide the partitions among the live ones (lister/membership.py); for each
partition it is assigned, a worker takes the partition's lister lease, resumes or builds the
partition's view (lister/partition_view.py), then follows its journal live. A partition assigned
elsewhere is released after the batch in hand; one whose lease is lost is dropped at once (the
new holder's batches win: apply_batch.lua refuses the old holder's). A store in the legacy layout
has one partition: one worker applies, the others stand by.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections import defaultdict

import redis as redis_lib

from jobjournal.common.errors import LeaseLost, StaleView
from jobjournal.common.faults import FaultPoints
from jobjournal.common.journal import JournalGap, read_journals
from jobjournal.common.keys import Partition
from jobjournal.common.layout import Layout, store_layout
from jobjournal.common.lease import Lease
from jobjournal.common.settings import Settings
from jobjournal.common.throttle import Throttle
from jobjournal.lister.membership import Membership, owner, worker_name
from jobjournal.lister.partition_view import HelperHealth, ListerCounts, PartitionView

log = logging.getLogger("jobjournal.lister")

LIVE_BATCH = 1000
BLOCK_MS = 100


class ListerWorker:
    def __init__(self, redis, settings: Settings):
        self.redis = redis
        self.settings = settings
        self.name = worker_name()
        self.membership = Membership(redis, self.name, settings.lease_ttl)
        self.applying = threading.Event()
        """Set while this worker holds every partition assigned to it (at least one) and follows
        their journals live."""
        self.views: dict[int, PartitionView] = {}
        """The partitions this worker holds, by index."""
        self.generations: dict[int, int] = {}
        """The generation this worker last applied of each partition it held."""
        self.helpers = HelperHealth()
        self.counts = ListerCounts()
        self.faults = FaultPoints(settings.fault)
        self.layout: Layout | None = None
        self._beats = Throttle(settings.lease_ttl / 3)
        self._assigned: set[int] = set()
        self._said: str | None = None
        """What this worker last logged it was doing (`_say`)."""

    # -- the process
    def run(self, stop: threading.Event | None = None) -> None:
        """Apply the partitions assigned to this worker until `stop` is set; Redis trouble is waited out."""
        stop = stop or threading.Event()
        try:
            while not stop.is_set():
                try:
                    self._cycle(stop)
                except redis_lib.ConnectionError as err:
                    log.warning("Redis unreachable (%s); retrying", err)
                    self._drop_all()
                    stop.wait(1.0)
                except redis_lib.RedisError as err:
                    log.error("Redis refused an operation (%s); starting over in 1s", err)
                    self._drop_all()
                    stop.wait(1.0)
        finally:
            self._drop_all()
            with contextlib.suppress(redis_lib.RedisError):
                self.membership.leave()

    def _cycle(self, stop: threading.Event) -> None:
        if self._beats.due():
            self._follow_layout()
            self._rebalance(self.membership.beat(), stop)
        if not self.views:
            stop.wait(self.settings.lease_ttl / 4)
            return
        self._keep_leases()
        self._apply_live(stop)

    # -- who applies what
    def _follow_layout(self) -> None:
        """The store's layout, read again at every beat: a store recorded as partitioned after this
        worker started (by a manager with other settings) is followed, not missed."""
        layout = store_layout(self.redis, self.settings.partitions)
        if layout != self.layout:
            if self.layout is not None:
                log.warning("the store's layout changed to %d partitions: starting over", layout.size)
            self._drop_all()
            self.layout = layout

    def _rebalance(self, members: list[str], stop: threading.Event) -> None:
        if self.name not in members:
            members = sorted([*members, self.name])
        self._assigned = {part.index for part in self.layout.partitions if owner(part.index, members) == self.name}
        for index in [index for index in self.views if index not in self._assigned]:
            log.info("partition %d is assigned to another worker now: releasing it", index)
            self._drop(index)
        for part in self.layout.partitions:
            if part.index in self._assigned and part.index not in self.views and not stop.is_set():
                self._take(part, stop)
        if self.views and set(self.views) == self._assigned:
            self.applying.set()
        else:
            self.applying.clear()
        if not self._assigned:
            others = ", ".join(member for member in members if member != self.name)
            self._say(f"standing by: every partition is assigned to the other workers ({others})")
        elif self.views:
            self._say(f"applying partitions {sorted(self.views)}" if self.layout.size > 1 else "applying the view")

    def _take(self, part: Partition, stop: threading.Event) -> None:
        lease = Lease(self.redis, part.lister_lease(), self.settings.lease_ttl)
        if not lease.try_acquire():  # its last holder has not let go yet: again at the next beat
            self._say(f"standing by for partition {part.index}: {part.lister_lease()} is held by {lease.holder()}")
            return
        view = PartitionView(self.redis, self.settings, part, lease, self.helpers, keepalive=self._keepalive,
                             faults=self.faults, counts=self.counts)
        self.views[part.index] = view
        self.counts.leases_taken += 1
        if not self._guarded(view, view.start, stop):
            return
        if stop.is_set():
            self._drop(part.index)

    def _say(self, what: str) -> None:
        """Log what this worker is doing, once each time it changes."""
        if what != self._said:
            log.info("%s", what)
            self._said = what

    def _keepalive(self) -> None:
        """During one partition's long work: keep this worker a member and its other leases held."""
        if self._beats.due():
            self.membership.beat()
        self._keep_leases()

    def _keep_leases(self) -> None:
        for view in list(self.views.values()):
            self._guarded(view, view.lease.keep, "the lister lease")

    # -- live
    def _apply_live(self, stop: threading.Event) -> None:
        positions = {view.part: view.position for view in self.views.values()}
        try:
            entries = read_journals(self.redis, positions, count=LIVE_BATCH, block_ms=BLOCK_MS)
        except JournalGap as err:
            view = self.views[err.partition]
            log.warning("rebuilding the view: %s", err)
            self._guarded(view, view.rebuild, stop)
            return
        if entries:
            self._keep_leases()  # the read may have waited: renew (if due) before the work, not after
        by_partition = defaultdict(list)
        for entry in entries:
            by_partition[entry.partition].append(entry)
        for index, batch in by_partition.items():
            view = self.views.get(index)
            if view is not None and self._guarded(view, self._apply_or_rebuild, view, batch, stop):
                self.counts.count_applied(index, len(batch))
        for view in self.views.values():
            view.register_if_due()

    def _apply_or_rebuild(self, view: PartitionView, batch, stop: threading.Event) -> None:
        """Apply a batch; if a key of the view has the wrong type (written by hand, say), build a new
        generation instead (its keys are new): the batch is in it."""
        try:
            view.apply(batch)
        except redis_lib.ResponseError as err:
            if not str(err).startswith("WRONGTYPE"):
                raise
            log.warning("partition %d: rebuilding the view: %s", view.part.index, err)
            view.rebuild(stop)

    def _guarded(self, view: PartitionView, action, *args) -> bool:
        """Run `action` on a held partition; drop the partition if its lease is lost or another
        worker moved its view on. False if dropped."""
        try:
            action(*args)
            return True
        except (LeaseLost, StaleView) as err:
            log.warning("partition %d: standing by: %s", view.part.index, err)
            self.counts.leases_lost += 1
            self._drop(view.part.index)
            return False

    @property
    def generation(self) -> int | None:
        """The generation of partition 0 this worker applies or last applied (the legacy layout's
        only partition)."""
        view = self.views.get(0)
        return view.generation if view is not None else self.generations.get(0)

    def _drop(self, index: int) -> None:
        view = self.views.pop(index, None)
        self.applying.clear()
        if view is not None:
            if view.generation is not None:
                self.generations[index] = view.generation
            view.lease.release_quietly()

    def _drop_all(self) -> None:
        for index in list(self.views):
            self._drop(index)
        self.applying.clear()
