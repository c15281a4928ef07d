"""A manager's or a lister worker's own metrics, read from the process at each scrape (the
processes keep plain counts: manager/manager.py ManagerCounts, lister/partition_view.py
ListerCounts): events posted or applied, steps and their time, lease terms taken and lost,
view builds and their time, whether it leads or which partitions it holds."""

from __future__ import annotations

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, SummaryMetricFamily


class ManagerCollector:
    def __init__(self, manager):
        self.manager = manager

    def collect(self):
        manager, counts = self.manager, self.manager.counts
        yield GaugeMetricFamily("jobjournal_manager_leading", "1 while this manager holds the lease and leads",
                                value=int(manager.leading.is_set()))
        yield CounterMetricFamily("jobjournal_manager_terms", "Times this process took the manager lease",
                                  value=counts.terms)
        yield CounterMetricFamily("jobjournal_manager_events_posted", "Events this process posted to the journals",
                                  value=manager.events_posted)
        steps = SummaryMetricFamily("jobjournal_manager_step_seconds", "Manager steps (read the inbox, move jobs "
                                    "on, post) and their time")
        steps.add_metric([], count_value=counts.steps, sum_value=counts.step_seconds)
        yield steps
        yield GaugeMetricFamily("jobjournal_manager_active_jobs", "Active jobs this manager tracks",
                                value=len(manager.life.jobs))


class ListerCollector:
    def __init__(self, worker):
        self.worker = worker

    def collect(self):
        worker, counts = self.worker, self.worker.counts
        applied = CounterMetricFamily("jobjournal_lister_events_applied", "Journal entries this worker applied",
                                      labels=["partition"])
        for partition, entries in sorted(counts.applied.items()):
            applied.add_metric([str(partition)], entries)
        yield applied
        held = GaugeMetricFamily("jobjournal_lister_partitions_held", "1 for each partition whose lease this "
                                 "worker holds", labels=["partition"])
        for partition in sorted(worker.views):
            held.add_metric([str(partition)], 1)
        yield held
        yield GaugeMetricFamily("jobjournal_lister_applying", "1 while this worker holds every partition assigned "
                                "to it and follows their journals", value=int(worker.applying.is_set()))
        yield CounterMetricFamily("jobjournal_lister_leases_taken", "Partition leases this worker took",
                                  value=counts.leases_taken)
        yield CounterMetricFamily("jobjournal_lister_leases_lost", "Partition leases this worker lost (or gave up "
                                  "to a newer view)", value=counts.leases_lost)
        builds = SummaryMetricFamily("jobjournal_lister_build_seconds", "View generations this worker built from "
                                     "a full journal, and their time")
        builds.add_metric([], count_value=counts.rebuilds, sum_value=counts.rebuild_seconds)
        yield builds
