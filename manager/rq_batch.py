"""Several rq tasks per round trip, each in rq's own records: how a `jobjournal worker`
(manager/rq_worker.py) takes, starts and ends the ingest tasks it runs together.

A batch, in round trips:
1. `take`: one transaction of BATCH_MAX LMOVEs moves up to that many task ids from the front of
   the queue to rq's intermediate queue (`rq:queue:<name>:intermediate`), as rq's own BLMOVE does
   for one task; a second round trip reads their `rq:job:<id>` hashes (a task deleted meanwhile is
   left out);
2. `start`: one transaction records each as rq does when it starts one (an execution in the
   StartedJobRegistry `rq:wip:<name>`, status `started`, out of the intermediate queue);
3. the caller runs the tasks, then queues `finished` for those that returned into a transaction
   of its own (their Result, status `finished`, the FinishedJobRegistry, the execution's end),
   and has rq's own `handle_job_failure` record each that failed (retries included).
rq's Job, Execution, Result and registry functions write every record, so `rq info`, `Job.fetch`
and `latest_result` see each task as they would after rq's own worker. Tasks' callbacks,
dependents, repeats and webhooks are not run (jobjournal's tasks have none).

A task taken and never ended (its worker killed) stays in rq's records, and rq's maintenance
fails it: one still in the intermediate queue a minute after a maintenance pass first saw it
there ("stuck in intermediate queue"), one started once its execution's heartbeat (its timeout +
60 s) has expired (AbandonedJobError). It is never run twice.
"""

from __future__ import annotations

import logging
from typing import NamedTuple

from rq.executions import Execution
from rq.job import Job, JobStatus
from rq.queue import Queue
from rq.utils import as_text, now
from rq.worker import WorkerStatus

from jobjournal.common.packed import execute_packed, pack, taken_transaction

log = logging.getLogger("jobjournal.worker")

BATCH_MAX = 16
"""The most tasks taken in one round trip (and held in memory at once: each up to the request
byte limit, JOBJOURNAL_MAX_REQUEST_BYTES)."""


class Taken(NamedTuple):
    """Tasks taken from a queue: their jobs, and the ids taken that are not run (the task's hash
    was gone or unreadable, or the id was queued twice)."""

    jobs: list[Job]
    left_out: list[str]


class Batch(NamedTuple):
    queue: Queue
    jobs: list[Job]
    executions: dict[str, Execution]
    """Job id -> its execution."""


def take(queue: Queue, serializer, count: int = BATCH_MAX) -> Taken:
    """Up to `count` tasks from the front of `queue`, none when it is empty (one round trip, and one
    more for their hashes when there are some); their data read with `serializer` (the worker's:
    JSON, whatever the queue object says)."""
    move = pack(("LMOVE", queue.key, queue.intermediate_queue_key, "LEFT", "RIGHT"))
    [*_, moved] = execute_packed(queue.connection, [pack(("MULTI",)), *[move] * count, pack(("EXEC",))])
    ids = [as_text(raw_id) for raw_id in moved if raw_id is not None]
    if not ids:
        return Taken([], [])
    hashes = execute_packed(queue.connection, [pack(("HGETALL", queue.job_class.key_for(i))) for i in ids])
    taken = Taken([], [])
    for job_id, found in zip(ids, hashes, strict=True):
        if any(job.id == job_id for job in taken.jobs):  # queued twice: run once
            taken.left_out.append(job_id)
            continue
        job = queue.job_class(job_id, connection=queue.connection, serializer=serializer)
        try:
            fields = found if isinstance(found, dict) else dict(zip(found[::2], found[1::2], strict=True))  # RESP3, 2
            job.restore(fields)  # NoSuchJobError when the hash is gone
        except Exception as err:  # noqa: BLE001 - one task rq itself could not read: left out, the rest go on
            log.warning("task %s left out: %s", job_id, err)
            taken.left_out.append(job_id)
            continue
        taken.jobs.append(job)
    return taken


def start(worker, queue: Queue, taken: Taken) -> Batch:
    """Record the tasks started, as rq's prepare_execution and prepare_job_execution do for one,
    in one transaction; the worker is busy."""
    executions = {}
    with worker.connection.pipeline() as pipe:
        for job in taken.jobs:
            ttl = worker.get_heartbeat_ttl(job)
            executions[job.id] = Execution.create(job, ttl, pipeline=pipe, worker_name=worker.name)
            job.prepare_for_execution(worker.name, pipeline=pipe)
            pipe.persist(job.key)
        for job_id in [job.id for job in taken.jobs] + taken.left_out:
            pipe.lrem(queue.intermediate_queue_key, 1, job_id)
        worker.set_state(WorkerStatus.BUSY, pipeline=pipe)
        worker.heartbeat(max((worker.get_heartbeat_ttl(job) for job in taken.jobs), default=None), pipeline=pipe)
        commit(pipe)
    worker.executions.update({execution.id: execution for execution in executions.values()})
    return Batch(queue, taken.jobs, executions)


def finished(worker, batch: Batch, returned: dict[str, object], pipe) -> None:
    """Queue into `pipe` (a transaction) what rq's handle_job_success writes for each task that
    returned (job id -> its return value), and the worker's return to idle. Each task's hash
    keeps no arguments: they held the jobs' environments, which live in the jobs' own keys."""
    for job in batch.jobs:
        if job.id not in returned:
            continue
        execution = batch.executions[job.id]
        job.ended_at = job.last_heartbeat = now()
        job._result = returned[job.id]
        job.func_name, job.args, job.kwargs = job.func_name, (), {}  # the data is rebuilt from all three
        result_ttl = job.get_result_ttl(worker.default_result_ttl)
        worker.increment_successful_job_count(pipe)
        worker.increment_total_working_time(job.ended_at - job.started_at, pipe)
        if result_ttl != 0:
            job._handle_success(result_ttl, pipeline=pipe, worker_name=worker.name, execution_id=execution.id,
                                execution_started_at=execution.created_at, execution_ended_at=job.ended_at)
        job.cleanup(result_ttl, pipeline=pipe, remove_from_queue=False)
        job._status = JobStatus.FINISHED
        worker.cleanup_execution(job, pipeline=pipe, execution=execution)
    worker.set_state(WorkerStatus.IDLE, pipeline=pipe)


def commit(pipe) -> None:
    """Run the commands queued in `pipe` (a redis-py pipeline rq's functions wrote into) as one
    MULTI/EXEC, packed with hiredis and sent in one write: redis-py's own execute packs and parses
    each command in Python, most of a batch's cost. The first error reply raises, as with
    redis-py's (one refused as it was queued, out of memory say, and Redis ran none of them)."""
    [*_, executed] = execute_packed(pipe, [pack(command) for command in taken_transaction(pipe)])
    for reply in executed:
        if isinstance(reply, Exception):
            raise reply


def failed(worker, batch: Batch, job: Job, exc_string: str) -> None:
    """Record one task failed, by rq's own handle_job_failure (a retry if it has retries left)."""
    job.ended_at = job.last_heartbeat = now()
    job._status = JobStatus.FAILED
    worker.handle_job_failure(job, batch.queue, exc_string=exc_string, execution=batch.executions[job.id])
