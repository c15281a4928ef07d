"""The `rq` exec backend: an rq worker runs the job's real command (see exec_task).

The manager enqueues an exec task after the alloc event is posted; the task reports
`exec-started` and `exec-finished` (with the wait status) through the manager's inbox,
and keeps a heartbeat key alive while it runs. A job whose heartbeat is gone, or whose
task vanished before starting, ends with an `exec` exception.
"""

from __future__ import annotations

import time

from rq import Queue
from rq.exceptions import NoSuchJobError
from rq.job import Job as RqJob
from rq.job import JobStatus

from common import events as ev
from common import keys, messages
from manager.jobs import Job

CHECK_INTERVAL = 1.0
KILL_KEY_TTL = 3600
LOST_STATUSES = {JobStatus.FAILED, JobStatus.STOPPED, JobStatus.CANCELED}


class RqExec:
    name = "rq"

    def __init__(self, host):
        self.host = host
        self.queue = Queue(keys.EXEC_QUEUE, connection=host.redis)
        self._checked_at = 0.0

    def start(self, job: Job, now: float) -> None:
        self.host.after_flush(lambda: self._enqueue(job))

    def restore(self, job: Job) -> None:
        if job.finished or job.state is None:
            return
        if job.killing:
            self.host.after_flush(lambda: self._kill(job.id))
        self._check(job)

    def kill(self, job: Job, now: float) -> None:
        self.host.after_flush(lambda: self._kill(job.id))

    def poll(self, now: float) -> None:
        if now - self._checked_at < CHECK_INTERVAL:
            return
        self._checked_at = now
        for job in list(self.host.jobs.values()):
            if job.R is not None and not job.finished and not job.released:
                self._check(job)

    def _enqueue(self, job: Job) -> None:
        spec = job.jobspec
        timeout = int(spec.duration) + 60 if spec.duration else -1
        self.queue.enqueue(
            "manager.exec_task.run_job",
            job.id,
            list(spec.command),
            spec.cwd,
            dict(spec.environment),
            spec.duration,
            job_id=keys.exec_rq_job(job.id),
            job_timeout=timeout,
            result_ttl=600,
            failure_ttl=3600,
        )

    def _kill(self, job_id: int) -> None:
        redis = self.host.redis
        if self.queue.remove(keys.exec_rq_job(job_id)):
            self._report(messages.ExecFinished(id=job_id, status=None, error="canceled before start"))
            return
        redis.set(keys.exec_kill(job_id), 1, ex=KILL_KEY_TTL)

    def _check(self, job: Job) -> None:
        """End the job with an exception if its exec task is gone."""
        if job.started:
            if not self.host.redis.exists(keys.exec_heartbeat(job.id)):
                self._lost(job, "exec worker lost while running the job")
            return
        try:
            task = RqJob.fetch(keys.exec_rq_job(job.id), connection=self.host.redis)
            status = task.get_status()
        except NoSuchJobError:
            if job.R is not None and time.time() - job.R.execution.starttime > CHECK_INTERVAL:
                self._lost(job, "exec task vanished before it started")
            return
        if status in LOST_STATUSES:
            self._lost(job, f"exec task {status.value} before it started")

    def _lost(self, job: Job, note: str) -> None:
        if job.state is not None and not job.fatal:
            self.host.post(job, ev.Exception_(timestamp=self.host.now(), type="exec", severity=0, note=note))
        job.finished = True  # no wait status will ever come
        self.host.job_stopped(job)

    def _report(self, message: messages.Request) -> None:
        self.host.redis.xadd(keys.manager_inbox(), {"msg": messages.encode(message)})
