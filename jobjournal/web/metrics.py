"""`/metrics`: Prometheus text, read from Redis at each scrape (prometheus-client; no global registry)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily

from jobjournal.common import keys
from jobjournal.common.layout import Layout
from jobjournal.lister import query as q

RESULTS = {"COMPLETED": "successful", "FAILED": "failed", "CANCELED": "canceled", "TIMEOUT": "timeout"}
"""A result's name -> its count's name in `query.stats`."""


class StoreCollector:
    """Jobs by state and result (the lister's view), journal length per partition, inbox length,
    dead letters."""

    def __init__(self, redis, layout: Layout, timeout: float):
        self.redis, self.layout, self.timeout = redis, layout, timeout

    def collect(self):
        stats = q.stats(self.redis, timeout=self.timeout, layout=self.layout)
        jobs = GaugeMetricFamily("jobjournal_jobs", "Jobs in each state (the lister's view)", labels=["state"])
        for state, count in stats["states"].items():
            jobs.add_metric([state], count)
        yield jobs
        results = GaugeMetricFamily("jobjournal_jobs_result", "Inactive jobs by result", labels=["result"])
        for result, name in RESULTS.items():
            results.add_metric([result], stats[name])
        yield results
        yield GaugeMetricFamily("jobjournal_jobs_purged", "Inactive jobs purged, ever", value=stats["inactive_purged"])
        yield from self._lengths()

    def _lengths(self):
        with self.redis.pipeline(transaction=False) as pipe:
            for part in self.layout.partitions:
                pipe.xlen(part.journal())
            pipe.xlen(keys.manager_inbox())
            pipe.xlen(keys.dead_letters())
            *journals, inbox, dead = pipe.execute()
        journal = GaugeMetricFamily("jobjournal_journal_entries", "Entries kept in each partition's journal",
                                    labels=["partition"])
        for part, length in zip(self.layout.partitions, journals, strict=True):
            journal.add_metric([str(part.index)], length)
        yield journal
        yield GaugeMetricFamily("jobjournal_inbox_entries", "Entries in the manager's inbox", value=inbox)
        yield GaugeMetricFamily("jobjournal_dead_letters", "Entries set aside (jj:deadletter)", value=dead)


def metrics_text(redis, layout: Layout, timeout: float) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StoreCollector(redis, layout, timeout))
    return generate_latest(registry)
