"""The rq worker `jobjournal worker` runs: rq's SimpleWorker with its per-task bookkeeping trimmed.

Between two tasks, SimpleWorker renews its worker keys' TTLs three times (HSET last_heartbeat
and two EXPIREs, one round trip each), checks for `rq suspend`, writes its state `idle` twice,
and writes the task's last heartbeat just before it writes the whole task again. For an ingest
task, which itself makes two round trips, that bookkeeping was the largest cost of a one-job
submission. This worker renews the TTLs (480 s) and checks for suspension at most once a
second, writes its state only when it changes, and lets the task's final write carry its last
heartbeat. It also lends ingest tasks its settings and one id generator, made once.
rq's registries, executions and results are untouched, so `rq info` and dashboards see it as
any other worker.
"""

from __future__ import annotations

import time

from rq import SimpleWorker
from rq.utils import now

from common.ids import generator_from_redis
from common.settings import load_settings
from manager.ingest import WorkerTools, lent

EVERY_S = 1.0
"""How often, at most, the worker renews its TTLs (rq's default is 480 s) and checks for suspension."""


class Worker(SimpleWorker):
    _last_beat = float("-inf")
    _last_suspension_check = float("-inf")
    _tools: WorkerTools | None = None

    def heartbeat(self, timeout=None, pipeline=None):
        """rq's heartbeat; a default renewal (no timeout given) at most every EVERY_S."""
        if timeout is None:
            if time.monotonic() - self._last_beat < EVERY_S:
                return
            self._last_beat = time.monotonic()
        super().heartbeat(timeout, pipeline)

    def check_for_suspension(self, burst):
        """rq's check for `rq suspend`, at most every EVERY_S."""
        if time.monotonic() - self._last_suspension_check < EVERY_S:
            return
        self._last_suspension_check = time.monotonic()
        super().check_for_suspension(burst)

    def set_state(self, state, pipeline=None):
        """rq's set_state, skipped when the state has not changed."""
        if state == getattr(self, "_state", None):
            return
        super().set_state(state, pipeline)

    def handle_execution_ended(self, job, queue, heartbeat_ttl):
        """rq's, without the separate HSET: the task's final save writes its last_heartbeat."""
        job.ended_at = job.last_heartbeat = now()

    def perform_job(self, job, queue, execution):
        if self._tools is None:
            self._tools = WorkerTools(load_settings(), generator_from_redis(self.connection))
        with lent(self._tools):
            return super().perform_job(job, queue, execution)
