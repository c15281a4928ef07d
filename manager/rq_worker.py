"""The rq worker `jobjournal worker` runs: rq's SimpleWorker, taking the ingest tasks waiting in
its queue several at a time, with its per-task bookkeeping trimmed.

When the queue holds tasks, the worker takes up to rq_batch.BATCH_MAX of them in one round trip,
starts them in one transaction, runs their requests together (manager/ingest.py `gather`: each is
proved, validated and charged on its own; the accepted ones' jobs share inbox entries) and ends
them in one transaction, each in rq's own records (manager/rq_batch.py). When the queue is empty
it waits for one task as rq does (BLMOVE, no polling) and runs it the same way. A task that fails
fails alone, recorded by rq's own handle_job_failure.

An answer is never written before its jobs are in the inbox. When the store is rq's Redis (and
JOBJOURNAL_SUBMIT_ON_DISK_S is not set), the inbox entries go in the transaction that ends the
tasks: a task answered has its jobs in the inbox, one not answered (its worker killed, a Redis
error) has none. With the store elsewhere, or the on-disk wait, the entries are written (and
confirmed on disk) first, then the answers.

SimpleWorker, between two tasks, renews its worker keys' TTLs three times (HSET last_heartbeat
and two EXPIREs, one round trip each), checks for `rq suspend`, writes its state twice, and
writes the task's last heartbeat just before it writes the whole task again. This worker:
- renews the TTLs at most once a second, and never sets them below rq's idle TTL (worker_ttl +
  60 s, 480 s by default), so they outlast the longest wait for a task;
- checks for `rq suspend` at most once a second (a suspension takes effect up to 1 s later);
- writes its state only when it changes, in the transactions that start and end a batch;
- runs tasks an older jobjournal enqueued (common/tasks.py: PREVIOUS) under today's paths, and no
  function but jobjournal's ingest (a task naming another fails, uncalled); tasks are JSON;
- gives ingest its settings, its store client (the store may be another server than rq's:
  manager/task_tools.py) and an id generator that takes a new number from Redis once a second,
  rather than once per task.
A warm shutdown (SIGTERM) waits until the tasks in hand are ended. `rq info` and dashboards see
it as any other worker.
"""

from __future__ import annotations

import logging
import traceback

import redis as redis_lib
from rq import SimpleWorker
from rq.exceptions import DeserializationError
from rq.serializers import JSONSerializer

from jobjournal.common import tasks
from jobjournal.common.settings import Settings, load_settings
from jobjournal.common.throttle import Throttle
from jobjournal.manager import forward, ingest, rq_batch
from jobjournal.manager.task_tools import worker_tools

log = logging.getLogger("jobjournal.worker")

BOOKKEEPING_EVERY_S = 1.0
"""The most often the worker renews its keys' TTLs and checks for suspension."""
NOT_OURS = "not a jobjournal task: this worker runs jobjournal.manager.ingest.ingest and .forward.forward only"


class LeanWorker(SimpleWorker):
    def __init__(self, queues, *args, settings: Settings | None = None, **kwargs):
        """rq's arguments; `settings` default to the environment's (as for `rq worker -w`)."""
        kwargs["serializer"] = JSONSerializer  # tasks are JSON (common/tasks.py), never unpickled, whatever
        super().__init__(queues, *args, **kwargs)  # rq's command line passes (its default is pickle)
        for queue in self.queues:  # rq's command line makes them with its own serializer
            queue.serializer = self.serializer
        settings = load_settings() if settings is None else settings
        self._tools = worker_tools(settings, self.connection)
        self._beats = Throttle(BOOKKEEPING_EVERY_S)
        self._suspension_checks = Throttle(BOOKKEEPING_EVERY_S)
        self._holding = False
        """Tasks are taken and not all ended yet."""

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

    def _shutdown(self):
        """rq's, but a worker holding tasks stops once it has ended them, as a busy one does."""
        if self._holding:
            self._stop_requested = True
            return
        super()._shutdown()

    def dequeue_job_and_maintain_ttl(self, timeout, max_idle_time=None):
        """The tasks to run next, (rq_batch.Taken, queue): all the queue holds, up to BATCH_MAX;
        when it holds none, rq's wait for one; None if none came."""
        self._holding = True
        taken = self._take()
        if taken.jobs or taken.left_out:
            return taken, self.queues[0]
        self._holding = False
        if self._stop_requested:  # asked to stop while taking: no wait for a task
            return None
        result = super().dequeue_job_and_maintain_ttl(timeout, max_idle_time)
        if result is None:
            return None
        self._holding = True
        job, queue = result
        return rq_batch.Taken([job], []), queue

    def _take(self) -> rq_batch.Taken:
        if len(self.queues) > 1:  # rq's own dequeue, one task at a time
            return rq_batch.Taken([], [])
        try:
            return rq_batch.take(self.queues[0], self.serializer)
        except (redis_lib.ConnectionError, redis_lib.TimeoutError):
            return rq_batch.Taken([], [])  # rq's wait, next, retries until Redis answers

    def execute_job(self, taken: rq_batch.Taken, queue):
        """Start the tasks taken, run them and end each (rq's execute_job, for several)."""
        try:
            batch = rq_batch.start(self, queue, taken)
            replies = self._replies(batch)
            for job in batch.jobs:
                if isinstance(replies[job.id], Exception):
                    rq_batch.failed(self, batch, job, "".join(traceback.format_exception(replies[job.id])))
        finally:
            self._holding = False

    def _replies(self, batch: rq_batch.Batch) -> dict[str, dict | Exception]:
        """Each task's return value, or the exception that fails it; those that returned are ended."""
        requests = {job.id: _request_of(job) for job in batch.jobs}
        valid = {job_id: request for job_id, request in requests.items() if isinstance(request, ingest.Request)}
        forwards = {job_id: request for job_id, request in requests.items() if isinstance(request, forward.Forward)}
        try:
            replies = self._ingested(batch, valid) if valid else {}
            replies |= self._forwarded(batch, forwards) if forwards else {}
        except Exception as err:  # noqa: BLE001 - a Redis error: these tasks fail, the worker goes on
            log.warning("%d ingest tasks failed: %s", len(valid) + len(forwards), err)
            replies = dict.fromkeys([*valid, *forwards], err)
        return {**requests, **replies}

    def _forwarded(self, batch: rq_batch.Batch, forwards: dict[str, forward.Forward]) -> dict[str, dict]:
        """Write the people's requests to the inbox (manager/forward.py) and end their tasks."""
        sent = forward.sent(self._tools.store, [request.message for request in forwards.values()])
        replies = dict(zip(forwards, sent, strict=True))
        with self.connection.pipeline() as pipe:
            rq_batch.finished(self, batch, replies, pipe)
            rq_batch.commit(pipe)
        return replies

    def _ingested(self, batch: rq_batch.Batch, requests: dict[str, ingest.Request]) -> dict[str, dict | Exception]:
        """Run the requests, write their jobs to the inbox and end the tasks that returned."""
        submission = ingest.gather(self._tools, list(requests.values()))
        together = ingest.sent_with_results(self._tools, self.connection)
        if not together:
            ingest.send(self._tools, submission)
        replies = dict(zip(requests, submission.replies, strict=True))
        with self.connection.pipeline() as pipe:
            if together:
                ingest.send(self._tools, submission, pipe)
            returned = {job_id: reply for job_id, reply in replies.items() if not isinstance(reply, Exception)}
            rq_batch.finished(self, batch, returned, pipe)
            rq_batch.commit(pipe)
        return replies


def _request_of(job) -> ingest.Request | forward.Forward | Exception:
    """The task's request; or the exception that fails it: it names another function than
    jobjournal's ingest or forward (never called) or is not JSON, or its arguments are not theirs."""
    try:
        name = tasks.current_path(job.func_name)  # a task an older jobjournal enqueued: today's path
    except DeserializationError:
        name = "(not JSON)"
    if name not in tasks.RUNNABLE:
        log.warning("task %s names %s, not a jobjournal task: refused", job.id, name)
        return PermissionError(NOT_OURS)
    try:
        if name == tasks.FORWARD:
            return forward.Forward(*job.args, **job.kwargs)
        return ingest.Request(*job.args, **job.kwargs)
    except TypeError as err:
        return err
