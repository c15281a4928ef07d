"""The store's metrics, read from Redis at each scrape: jobs by state and result (the lister's
view), per partition the events posted and applied, the view's lag (entries and seconds), a
build's progress and the lease holder; each full-journal consumer's lag; the inbox, rq's ingest
queue and the exec dispatch stream; dead letters. No global registry: `store_registry` makes one."""

from __future__ import annotations

import redis as redis_lib
from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from jobjournal.common import keys, tasks
from jobjournal.common.errors import JobJournalError
from jobjournal.common.layout import Layout, read_layout
from jobjournal.common.packed import reads
from jobjournal.lister import query as q
from jobjournal.lister.progress import partition_progress
from jobjournal.system import consumer_lag

RESULTS = {"COMPLETED": "successful", "FAILED": "failed", "CANCELED": "canceled", "TIMEOUT": "timeout"}
"""A result's name -> its count's name in `query.stats`."""


class StoreCollector:
    """`layout` None: read at each scrape (a long-running process follows a store that changes it)."""

    def __init__(self, redis, layout: Layout | None, timeout: float, queues=None):
        self.redis, self.layout, self.timeout = redis, layout, timeout
        self.queues = redis if queues is None else queues

    def collect(self):
        """Each section on its own: one that fails (no view yet, a Redis error) is left out and
        counted in jobjournal_scrape_errors, the others are served (a first build's progress, say)."""
        failed = GaugeMetricFamily("jobjournal_scrape_errors", "Sections of this scrape that could not be read",
                                   labels=["section"])
        try:
            layout = self.layout or read_layout(self.redis)
        except (redis_lib.RedisError, redis_lib.exceptions.RedisClusterException, JobJournalError):
            failed.add_metric(["layout"], 1)
            yield failed
            return
        for name, section in (("jobs", self._jobs), ("partitions", self._partitions),
                              ("consumers", self._consumers), ("queues", self._queues)):
            try:
                yield from list(section(layout))
            except (redis_lib.RedisError, redis_lib.exceptions.RedisClusterException, JobJournalError):
                failed.add_metric([name], 1)
        yield failed

    def _jobs(self, layout: Layout):
        stats = q.stats(self.redis, timeout=self.timeout, layout=layout)
        jobs = GaugeMetricFamily("jobjournal_jobs", "Jobs in each state (the lister's view)", labels=["state"])
        for state, count in stats["states"].items():
            jobs.add_metric([state], count)
        yield jobs
        results = GaugeMetricFamily("jobjournal_jobs_result", "Inactive jobs by result", labels=["result"])
        for result, name in RESULTS.items():
            results.add_metric([result], stats[name])
        yield results
        yield GaugeMetricFamily("jobjournal_jobs_purged", "Inactive jobs purged, ever", value=stats["inactive_purged"])

    def _partitions(self, layout: Layout):
        label = ["partition"]
        posted = CounterMetricFamily("jobjournal_journal_events", "Events posted to each partition's journal, ever "
                                     "(its seq; rate() gives events posted per second)", labels=label)
        applied = CounterMetricFamily("jobjournal_view_events_applied", "Journal events each partition's view "
                                      "has applied (its seq; rate() gives events applied per second)", labels=label)
        behind = GaugeMetricFamily("jobjournal_view_behind_events", "Journal entries the view has not applied",
                                   labels=label)
        behind_s = GaugeMetricFamily("jobjournal_view_behind_seconds", "Between the journal's newest entry and the "
                                     "view's cursor", labels=label)
        building = GaugeMetricFamily("jobjournal_view_build_jobs_loaded", "Jobs a view build in progress has "
                                     "loaded (absent: no build)", labels=label)
        jobs = GaugeMetricFamily("jobjournal_partition_jobs", "Jobs each partition holds, active and inactive "
                                 "(what a build loads)", labels=label)
        holder = GaugeMetricFamily("jobjournal_lister_lease_holder", "1 for the lister process that holds each "
                                   "partition's lease", labels=["partition", "holder"])
        for part in partition_progress(self.redis, layout):
            index = [str(part.index)]
            posted.add_metric(index, part.posted)
            if part.applied is not None:
                applied.add_metric(index, part.applied)
            behind.add_metric(index, part.behind)
            behind_s.add_metric(index, part.behind_s)
            jobs.add_metric(index, part.jobs)
            if part.building is not None:
                building.add_metric(index, part.building)
            if part.holder:
                holder.add_metric([*index, part.holder], 1)
        yield from (posted, applied, behind, behind_s, building, jobs, holder)

    def _consumers(self, layout: Layout):
        labels = ["partition", "consumer"]
        lag = GaugeMetricFamily("jobjournal_consumer_behind_seconds", "Each registered full-journal consumer: "
                                "between the journal's newest entry and its cursor", labels=labels)
        entries = GaugeMetricFamily("jobjournal_consumer_behind_entries", "Each registered full-journal consumer: "
                                    "journal entries after its cursor (absent once its cursor's entry is trimmed)",
                                    labels=labels)
        for consumer in consumer_lag(self.redis, layout):
            names = [str(consumer["partition"]), consumer["consumer"]]
            lag.add_metric(names, consumer["behind_s"])
            if consumer["behind_entries"] is not None:
                entries.add_metric(names, consumer["behind_entries"])
        yield lag
        yield entries

    def _queues(self, layout: Layout):
        inbox, dead, manager, *lengths = reads(self.redis, [
            ("XLEN", keys.manager_inbox()), ("XLEN", keys.dead_letters()), ("GET", keys.manager_lease()),
            *(("XLEN", part.journal()) for part in layout.partitions)])
        journals = GaugeMetricFamily("jobjournal_journal_entries", "Entries kept in each partition's journal",
                                     labels=["partition"])
        for part, length in zip(layout.partitions, lengths, strict=True):
            journals.add_metric([str(part.index)], length)
        yield journals
        yield GaugeMetricFamily("jobjournal_inbox_entries", "Entries in the manager's inbox", value=inbox)
        yield GaugeMetricFamily("jobjournal_dead_letters", "Entries set aside (jj:deadletter)", value=dead)
        queued = GaugeMetricFamily("jobjournal_queue_length", "Tasks waiting: rq's ingest queue, and the exec "
                                   "dispatch stream's entries", labels=["queue"])
        queued.add_metric(["ingest"], tasks.ingest_queue(self.queues).count)
        queued.add_metric(["exec"], self.queues.xlen(keys.exec_dispatch()))
        yield queued
        leader = GaugeMetricFamily("jobjournal_manager_lease_holder", "1 for the manager process that leads",
                                   labels=["holder"])
        if manager:
            leader.add_metric([manager.decode()], 1)
        yield leader


def store_registry(redis, layout: Layout | None, timeout: float, queues=None) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StoreCollector(redis, layout, timeout, queues))
    return registry
