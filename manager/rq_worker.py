"""The rq worker `jobjournal worker` runs: rq's SimpleWorker with its per-task bookkeeping trimmed.

Between two tasks, SimpleWorker renews its worker keys' TTLs three times (HSET last_heartbeat
and two EXPIREs, one round trip each), checks for `rq suspend`, writes its state `idle` twice,
and writes the task's last heartbeat just before it writes the whole task again. For an ingest
task, which itself makes two round trips, that bookkeeping was the largest cost of a one-job
submission. This worker renews the TTLs (480 s) and checks for suspension at most once a
second, writes its state only when it changes, and lets the task's final write carry its last
heartbeat. It also lends ingest tasks its settings, read once, and an id generator that takes
a new number from Redis once a second rather than once per task.
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
NEW_GENERATOR_S = 1.0
"""How long ingest tasks share one id generator number."""


class Worker(SimpleWorker):
    _last_beat = float("-inf")
    _last_suspension_check = float("-inf")
    _tools: WorkerTools | None = None
    _tools_made = float("-inf")

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
        with lent(self._ingest_tools()):
            return super().perform_job(job, queue, execution)

    def _ingest_tools(self) -> WorkerTools:
        """The settings, read once, and an id generator with a new number every NEW_GENERATOR_S.

        A generator number is only unique until the counter has gone round its 16384 values,
        which a long-lived generator could outlive (plain rq workers take a number per task).
        """
        if self._tools is None or time.monotonic() - self._tools_made >= NEW_GENERATOR_S:
            settings = self._tools.settings if self._tools else load_settings()
            self._tools = WorkerTools(settings, generator_from_redis(self.connection))
            self._tools_made = time.monotonic()
        return self._tools
