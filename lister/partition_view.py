"""One partition's view, kept by the lister worker that holds the partition's lease.

It resumes from the generation readers use, or builds a new one from a full journal of its
partition (shared with helper processes if big) and switches readers to it atomically; then it
applies the partition's live journal entries, each batch atomically with its new cursor and only
if the view is at the batch's starting seq (lua/apply_batch.lua, which also checks the lease). A
missing or old-format view, or a cursor that fell behind a trimmed journal, leads to a rebuild.
"""

from __future__ import annotations

import logging
import threading
import time

import msgspec
import redis as redis_lib

from jobjournal.common import events as ev
from jobjournal.common import keys
from jobjournal.common.consumers import forget_consumer, new_consumer_name, register_consumer
from jobjournal.common.deadletters import set_aside
from jobjournal.common.errors import LeaseLost
from jobjournal.common.faults import FaultPoints
from jobjournal.common.formats import VIEW_VERSION
from jobjournal.common.full_journal import request_full_journal
from jobjournal.common.journal import JournalEvent
from jobjournal.common.keys import Partition
from jobjournal.common.lease import Lease
from jobjournal.common.reply_format import Sentinel
from jobjournal.common.reply_reader import ReplyReader
from jobjournal.common.resources import decode_R
from jobjournal.common.settings import Settings
from jobjournal.common.throttle import Throttle
from jobjournal.lister.claiming_reader import ClaimingReader
from jobjournal.lister.derive import derive_all
from jobjournal.lister.errors import SharedRebuildFailed
from jobjournal.lister.helper_processes import Helpers
from jobjournal.lister.model import JobView, decode_jobspec
from jobjournal.lister.view import BulkWriter, Changes, delete_generation

log = logging.getLogger("jobjournal.lister")

REGISTER_EVERY = 1.0


class HelperHealth:
    """Whether rebuild helpers work in this process: False once one failed (later rebuilds go alone)."""

    def __init__(self):
        self.works = True


class ListerCounts:
    """What a lister worker has done since it started, for its metrics (jobjournal/metrics/process.py)."""

    def __init__(self):
        self.applied: dict[int, int] = {}
        """Journal entries applied, by partition."""
        self.leases_taken = 0
        self.leases_lost = 0
        self.rebuilds = 0
        self.rebuild_seconds = 0.0

    def count_applied(self, partition: int, entries: int) -> None:
        self.applied[partition] = self.applied.get(partition, 0) + entries


class PartitionView:
    def __init__(self, redis, settings: Settings, part: Partition, lease: Lease, helpers: HelperHealth,
                 keepalive=lambda: None, faults: FaultPoints | None = None, counts: ListerCounts | None = None):
        self.redis = redis
        self.settings = settings
        self.part = part
        self.lease = lease
        """The partition's lister lease, held."""
        self.helpers = helpers
        self.generation: int | None = None
        self.cursor = "0-0"
        self.seq = 0
        self.cache: dict[int, JobView] = {}
        """Views of the active jobs, as applied (the inactive ones are read back when touched)."""
        self._registrations = Throttle(REGISTER_EVERY)
        self._keepalive = keepalive
        """Called during long work (a rebuild): the worker keeps its membership and other leases."""
        self.faults = faults or FaultPoints()
        self.counts = counts or ListerCounts()

    def start(self, stop: threading.Event) -> None:
        """Resume the view readers use, or build one."""
        started = time.monotonic()
        if self._resume():
            log.info("resumed generation %d%s at %s in %.3fs", self.generation, self._where(), self.cursor,
                     time.monotonic() - started)
        else:
            self.rebuild(stop)

    @property
    def position(self) -> tuple[str, int]:
        """(cursor, seq): where the view is in the partition's journal."""
        return self.cursor, self.seq

    def register_if_due(self) -> None:
        """Tell the manager how far the view has read, so the journal is kept from there."""
        if self._registrations.due():
            register_consumer(self.redis, self.part, _consumer(self.generation), self.cursor)

    def _renew(self) -> None:
        self.lease.keep("the lister lease" + self._where())
        self._keepalive()

    def _where(self) -> str:
        return f" of partition {self.part.index}" if self.part.tag else ""

    # -- warm restart
    def _resume(self) -> bool:
        current = self.redis.get(self.part.view_current())
        if current is None:
            log.info("no view yet: building one from a full journal")
            return False
        generation = int(current)
        meta = self.redis.hgetall(self.part.view_meta(generation))
        if int(meta.get(b"version", 0)) != VIEW_VERSION:
            found = meta.get(b"version")
            log.info("view generation %d has format %s, not %d: rebuilding", generation, found, VIEW_VERSION)
            return False
        self.generation = generation
        self.cursor = meta[b"cursor"].decode()
        self.seq = int(meta[b"seq"])
        return True

    # -- full rebuild
    def rebuild(self, stop: threading.Event) -> None:
        """Build a new generation from a full journal, then switch readers to it atomically."""
        started = time.monotonic()
        dead = self._drop_abandoned_build()
        try:
            generation, writer, sentinel = self._build(stop, dead)
            self._switch_to(generation)
        finally:  # a killed helper's last chunk may have landed after its generation was deleted
            for late in dead:
                delete_generation(self.redis, self.part, late)  # by name: quick, and done even with the lease lost
        self.generation, self.cursor, self.seq, self.cache = generation, sentinel.cursor, sentinel.seq, {}
        took = time.monotonic() - started
        self.counts.rebuilds += 1
        self.counts.rebuild_seconds += took
        log.info("built generation %d: %d jobs (%d by helpers) in %.3fs", generation, writer.jobs, writer.counted_in,
                 took)

    def _build(self, stop: threading.Event, dead: list[int]) -> tuple[int, BulkWriter, Sentinel]:
        """Attempt builds until one completes; each failed attempt's generation is deleted and
        added to `dead`."""
        sentinel = None
        while sentinel is None and not stop.is_set():
            # a new generation each attempt: writes of a killed helper may still land in the last
            generation = int(self.redis.incr(self.part.view_generation_counter()))
            self._mark_building(generation)
            with BulkWriter(self.redis, self.part, generation, self.lease.token) as writer:
                sentinel = self._load_backlog(writer, f"lister-g{generation}-{new_consumer_name()}", stop)
                if sentinel is not None:
                    writer.finish(sentinel.cursor, sentinel.seq, sentinel.purged)
            if sentinel is None:
                delete_generation(self.redis, self.part, generation, self._renew)
                dead.append(generation)
        if sentinel is None:
            raise LeaseLost("stopped while building the view")
        return generation, writer, sentinel

    def _load_backlog(self, writer: BulkWriter, consumer: str, stop) -> Sentinel | None:
        """Read a full journal into `writer`, shared with helper processes if it is big; None
        if the reply stalled or a helper failed (ask again)."""
        helpers = self._helpers_wanted()
        try:
            with Helpers(self.settings, self.part, consumer, writer.generation, helpers, self.lease.token) as started:
                request_full_journal(self.redis, consumer, [self.part])
                reading = ClaimingReader if helpers else ReplyReader
                reader = reading(self.redis, self.part, consumer)
                with reader:
                    sentinel = self._read_backlog(reader, writer, consumer, stop)
                if sentinel is not None and helpers and not self._count_in_helpers(started, writer, stop):
                    return None
                if sentinel is not None and not _all_there(writer, sentinel):
                    raise SharedRebuildFailed(f"{writer.jobs} jobs built where the full journal has {sentinel.jobs}")
                return sentinel
        except (SharedRebuildFailed, OSError) as err:  # OSError: a helper could not start
            log.warning("shared rebuild failed (%s): building again without helpers", err)
            self.helpers.works = False
            return None
        finally:
            self.redis.unlink(self.part.journal_reply(consumer), self.part.journal_reply_claims(consumer))

    def _helpers_wanted(self) -> int:
        if self.settings.rebuild_processes < 2 or not self.helpers.works:
            return 0
        with self.redis.pipeline(transaction=False) as pipe:
            jobs = sum(pipe.zcard(self.part.inactive_jobs()).scard(self.part.active_jobs()).execute())
        return self.settings.rebuild_processes - 1 if jobs >= self.settings.rebuild_split_from else 0

    def _count_in_helpers(self, helpers: Helpers, writer: BulkWriter, stop) -> bool:
        """Add what the helpers wrote to the writer's stats; False if one failed."""
        reports = helpers.reports(self._renew, stop)
        if reports is None:
            if not stop.is_set():
                log.warning("a rebuild helper failed: building again without helpers")
                self.helpers.works = False
            return False
        for report in reports:
            writer.count_in(report.jobs, report.tally, report.skipped)
        return True

    def _read_backlog(self, reader, writer: BulkWriter, consumer: str, stop) -> Sentinel | None:
        """Derive what `reader` gives into `writer` until the sentinel; None if the reply stalled
        or `stop` was set. Renews the lease on the way (each chunk written counts in the build's progress)."""

        def go_on() -> bool:
            self._renew()
            self.faults.reached("lister.rebuilding")
            return not stop.is_set()

        sentinel = derive_all(reader, writer, self.redis, consumer, go_on)
        if sentinel is not None:
            # the snapshot's hold on the journal passes to the new generation
            register_consumer(self.redis, self.part, _consumer(writer.generation), sentinel.cursor)
            forget_consumer(self.redis, self.part, consumer)
        return sentinel

    def _switch_to(self, generation: int) -> None:
        """Make `generation` the one readers use (if this worker still holds the lease), then
        delete the one they used."""
        old = self.redis.get(self.part.view_current())

        def switch(pipe) -> None:
            pipe.set(self.part.view_current(), generation)
            pipe.delete(self.part.view_building())

        self._while_holding("switching generations", switch)
        if old is not None:
            forget_consumer(self.redis, self.part, _consumer(int(old)))
            delete_generation(self.redis, self.part, int(old), self._renew)

    def _mark_building(self, generation: int) -> None:
        """Say that `generation` is being built (its chunks are written only while it is)."""
        marker = {"generation": generation, "jobs": 0, "started": time.time()}

        def mark(pipe) -> None:
            pipe.delete(self.part.view_building())
            pipe.hset(self.part.view_building(), mapping=marker)

        self._while_holding("starting a build", mark)

    def _drop_abandoned_build(self) -> list[int]:
        """Delete the build a stopped worker left; its generation, if there was one."""
        abandoned = self.redis.hget(self.part.view_building(), "generation")
        if abandoned is None:
            return []
        delete_generation(self.redis, self.part, int(abandoned), self._renew)
        self._while_holding("dropping an abandoned build", lambda pipe: pipe.delete(self.part.view_building()))
        return [int(abandoned)]

    def _while_holding(self, doing: str, write) -> None:
        """Run `write(pipe)` as one transaction that commits only while this worker holds the lease
        (LeaseLost otherwise): a worker stopped past its lease changes no marker when it resumes.
        (`write` calls one command a statement: a cluster pipeline's commands do not chain.)"""
        lease = self.part.lister_lease()
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.watch(lease)
            if pipe.get(lease) != self.lease.token.encode():
                raise LeaseLost(f"lost the lister lease before {doing}")
            pipe.multi()
            write(pipe)
            try:
                pipe.execute()
            except redis_lib.WatchError as err:  # the lease changed hands between WATCH and EXEC
                raise LeaseLost(f"lost the lister lease while {doing}") from err

    # -- live
    def apply(self, entries: list[JournalEvent]) -> None:
        """Apply journal entries to the view, atomically with the new cursor."""
        views = self._load_views(_jobs_known_before(entries))
        old = {job_id: (msgspec.structs.replace(view) if view else None) for job_id, view in views.items()}
        changes = Changes(self.part, self.generation)
        for entry in entries:
            if entry.problem:
                set_aside(self.redis, self.part.journal(), entry.entry_id, entry.problem)
                continue
            if entry.is_purge:
                views[entry.job_id] = None
                changes.count(keys.STAT_PURGED)
                continue
            views[entry.job_id] = self._applied(views.get(entry.job_id), entry)
        for job_id, view in views.items():
            if view is not None or old[job_id] is not None:
                changes.update(old[job_id], view)
        last = entries[-1]
        changes.apply(self.redis, self.lease.token, self.seq, last.seq, last.entry_id)
        self.seq, self.cursor = last.seq, last.entry_id
        self.faults.reached("lister.applied")
        for job_id, view in views.items():
            if view is None or view.list_name == "inactive":
                self.cache.pop(job_id, None)
            else:
                self.cache[job_id] = view

    def _decoded(self, job_id: int, data: bytes) -> JobView | None:
        try:
            return JobView.from_json(data)
        except (msgspec.DecodeError, msgspec.ValidationError) as err:
            source = f"{self.part.view_jobs(self.generation)} {job_id}"
            set_aside(self.redis, source, "", f"unreadable view document: {err}")
            return None  # rebuilt from its next submit, or left out: the process goes on

    def _applied(self, view: JobView | None, entry: JournalEvent) -> JobView | None:
        if view is None:
            if not isinstance(entry.event, ev.Submit):
                log.warning("journal %s: %s for job %d, which the view lacks; skipped",
                            entry.entry_id, ev.event_name(entry.event), entry.job_id)
                return None
            view = JobView(id=entry.job_id)
        if entry.jobspec:
            view.set_jobspec(decode_jobspec(entry.jobspec))
        view.apply(entry.event)
        if entry.R and isinstance(entry.event, ev.Alloc):
            view.set_R(decode_R(entry.R))
        return view

    def _load_views(self, job_ids: dict[int, bool]) -> dict[int, JobView | None]:
        """Views of the jobs a batch touches; only those that may exist are read from Redis."""
        views: dict[int, JobView | None] = {}
        missing = []
        for job_id, may_exist in job_ids.items():
            if job_id in self.cache:
                views[job_id] = self.cache[job_id]
            elif may_exist:
                missing.append(job_id)
            else:
                views[job_id] = None
        if missing:
            stored = self.redis.hmget(self.part.view_jobs(self.generation), missing)
            for job_id, data in zip(missing, stored, strict=True):
                views[job_id] = self._decoded(job_id, data) if data else None
        return views


def _all_there(writer: BulkWriter, sentinel: Sentinel) -> bool:
    """Whether the build holds every job of the full journal (fewer if some were set aside)."""
    return writer.jobs == sentinel.jobs or (writer.jobs < sentinel.jobs and writer.skipped > 0)


def _consumer(generation: int) -> str:
    """The journal consumer a view generation registers as: whichever worker applies it."""
    return f"view-g{generation}"


def _jobs_known_before(entries: list[JournalEvent]) -> dict[int, bool]:
    """Each job a batch touches, and whether it may already be in the view (not new in it)."""
    jobs: dict[int, bool] = {}
    for entry in entries:
        if entry.job_id not in jobs and not entry.problem:
            jobs[entry.job_id] = not isinstance(entry.event, ev.Submit)
    return jobs

