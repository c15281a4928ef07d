"""The rq worker `jobjournal worker` runs: rq's SimpleWorker with its per-task bookkeeping trimmed.

Between two tasks, SimpleWorker renews its worker keys' TTLs three times (HSET last_heartbeat
and two EXPIREs, one round trip each), checks for `rq suspend`, writes its state `idle` twice,
and writes the task's last heartbeat just before it writes the whole task again. For an ingest
task, which itself makes two round trips, that bookkeeping was the largest cost of a one-job
submission. This worker:
- renews the TTLs at most once a second, and never sets them below rq's idle TTL (worker_ttl +
  60 s, 480 s by default), so they outlast the longest wait for a task;
- checks for `rq suspend` at most once a second (a suspension takes effect up to 1 s later);
- writes its state only when it changes;
- lets the task's final write carry the task's last heartbeat;
- runs tasks an older jobjournal enqueued (common/tasks.py: PREVIOUS) under today's paths, and no
  function but jobjournal's ingest (a task naming another fails, uncalled); tasks are JSON;
- lends its tasks its settings, its store client (the store may be another server than rq's:
  manager/task_tools.py) and an id generator that takes a new number from Redis once a second,
  rather than once per task.
rq's registries, executions and results are untouched, so `rq info` and dashboards see it as
any other worker.
"""

from __future__ import annotations

import logging

from rq import SimpleWorker
from rq.exceptions import DeserializationError
from rq.serializers import JSONSerializer
from rq.utils import now

from jobjournal.common import tasks
from jobjournal.common.settings import Settings, load_settings
from jobjournal.common.throttle import Throttle
from jobjournal.manager.task_tools import lend, worker_tools

log = logging.getLogger("jobjournal.worker")

BOOKKEEPING_EVERY_S = 1.0
"""The most often the worker renews its keys' TTLs and checks for suspension."""


class LeanWorker(SimpleWorker):
    def __init__(self, queues, *args, settings: Settings | None = None, **kwargs):
        """rq's arguments; `settings` default to the environment's (as for `rq worker -w`)."""
        kwargs["serializer"] = JSONSerializer  # tasks are JSON (common/tasks.py), never unpickled, whatever
        super().__init__(queues, *args, **kwargs)  # rq's command line passes (its default is pickle)
        settings = load_settings() if settings is None else settings
        self._tools = worker_tools(settings, self.connection)
        self._beats = Throttle(BOOKKEEPING_EVERY_S)
        self._suspension_checks = Throttle(BOOKKEEPING_EVERY_S)

    def heartbeat(self, timeout=None, pipeline=None):
        """rq's heartbeat. A default renewal (no timeout) goes at most every BOOKKEEPING_EVERY_S;
        a task's (its timeout + 60 s) never shortens the TTL below the default's, which would
        let the keys expire while the worker waits for its next task."""
        if timeout is None and not self._beats.due():
            return
        if timeout is not None:
            timeout = max(timeout, self.worker_ttl + 60)
        super().heartbeat(timeout, pipeline)

    def check_for_suspension(self, burst):
        """rq's check for `rq suspend`, at most every BOOKKEEPING_EVERY_S."""
        if self._suspension_checks.due():
            super().check_for_suspension(burst)

    def set_state(self, state, pipeline=None):
        """rq's set_state, skipped when the state has not changed."""
        if state == self.get_state():
            return
        super().set_state(state, pipeline)

    def handle_execution_ended(self, job, queue, heartbeat_ttl):
        """rq's, without the separate HSET: the task's final save writes its last_heartbeat."""
        job.ended_at = job.last_heartbeat = now()

    def perform_job(self, job, queue, execution):
        try:
            name = tasks.current_path(job.func_name)  # a task an older jobjournal enqueued: today's path
        except DeserializationError:
            name = "(not JSON)"
        if name not in tasks.RUNNABLE:
            log.warning("task %s names %s, not a jobjournal task: refused", job.id, name)
            _refuse(job)  # rq records the failure and its reason as for any task
            return super().perform_job(job, queue, execution)
        job.func_name = name
        with lend(self._tools):
            return super().perform_job(job, queue, execution)


REFUSE = "jobjournal.manager.rq_worker.refuse"


def _refuse(job) -> None:
    """Make the task run `refuse`, with nothing of what it held (which may not even decode)."""
    job.func_name = REFUSE
    job.instance, job.args, job.kwargs = None, (), {}


def refuse(*args, **kwargs):
    """What a task naming another function than jobjournal's runs instead: nothing."""
    raise PermissionError("not a jobjournal task: this worker runs jobjournal.manager.ingest.ingest only")
