"""The `rq` exec backend: an rq worker runs the job's real command (see exec_task).

The manager enqueues an exec task after the alloc event is posted; the task reports
`exec-started` and `exec-finished` (with the wait status) through the manager's inbox,
and keeps a heartbeat key alive while it runs. A job whose heartbeat is gone, or whose
task vanished before starting, ends with an `exec` exception.
"""

from __future__ import annotations

from collections.abc import Mapping

from rq import Queue
from rq.exceptions import NoSuchJobError
from rq.job import Job as RqJob
from rq.job import JobStatus

from jobjournal.common import events as ev
from jobjournal.common import inbox, keys, messages, tasks
from jobjournal.common.throttle import Throttle
from jobjournal.manager.exec_backend import JobEvents
from jobjournal.manager.jobs import Job

CHECK_INTERVAL = 1.0
KILL_KEY_TTL = 3600
LOST_STATUSES = {JobStatus.FAILED, JobStatus.STOPPED, JobStatus.CANCELED}


class RqExec:
    name = "rq"

    def __init__(self, redis, queues, host: JobEvents, jobs: Mapping[int, Job]):
        self.redis = redis
        """The store (the manager's inbox)."""
        self.queues = queues
        """rq's Redis: the exec queue and the exec keys (kill, heartbeat) beside it."""
        self.host = host
        self.jobs = jobs
        """The manager's active jobs."""
        self.queue = Queue(keys.EXEC_QUEUE, connection=queues)
        self._checks = Throttle(CHECK_INTERVAL, host.now)
        self._enqueued: set[int] = set()
        """Jobs whose exec task is known to be on the queue (or done): only those can be lost."""
        self._suspects: set[int] = set()
        """Jobs that looked lost at the last check; lost for good if they still do at the next."""

    def start(self, job: Job, now: float) -> None:
        self.host.after_flush(lambda: self._enqueue(job))

    def restore(self, job: Job) -> None:
        """A job allocated before a restart: enqueue its task again if it never got there."""
        if not job.finished and not job.started:
            self.host.after_flush(lambda: self._enqueue(job))
        elif job.started:
            self._enqueued.add(job.id)

    def kill(self, job: Job, now: float) -> None:
        self.host.after_flush(lambda: self._kill(job.id))

    def poll(self, now: float) -> None:
        if not self._checks.due():
            return
        suspects, self._suspects = self._suspects, set()
        self._enqueued &= self.jobs.keys()  # forget jobs that are gone
        for job in list(self.jobs.values()):
            if job.id in self._enqueued and job.R is not None and not job.finished and not job.released:
                self._check(job, confirmed=job.id in suspects)

    def _enqueue(self, job: Job) -> None:
        if job.finished or job.released or job.state is None:
            return
        self._enqueued.add(job.id)
        if RqJob.exists(keys.exec_rq_job(job.id), connection=self.queues):
            return  # enqueued before a manager restart
        spec = job.jobspec
        timeout = int(spec.duration) + 60 if spec.duration else -1
        self.queue.enqueue(
            tasks.EXEC,
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
        if self.queue.remove(keys.exec_rq_job(job_id)):
            inbox.send(self.redis, messages.ExecFinished(id=job_id, status=None, error="canceled before start"))
            return
        self.queues.set(keys.exec_kill(job_id), 1, ex=KILL_KEY_TTL)

    def _check(self, job: Job, confirmed: bool) -> None:
        """End the job with an exception if its exec task is gone at two checks in a row."""
        reason = self._why_lost(job)
        if reason is None:
            return
        if confirmed:
            self._lost(job, reason)
        else:
            self._suspects.add(job.id)  # its report may still be in the inbox: look again later

    def _why_lost(self, job: Job) -> str | None:
        if job.started:
            alive = self.queues.exists(keys.exec_heartbeat(job.id))
            return None if alive else "exec worker lost while running the job"
        try:
            status = RqJob.fetch(keys.exec_rq_job(job.id), connection=self.queues).get_status()
        except NoSuchJobError:
            return "exec task vanished before it started"
        return f"exec task {status.value} before it started" if status in LOST_STATUSES else None

    def _lost(self, job: Job, note: str) -> None:
        if job.state is not None and not job.fatal:
            self.host.post(job, ev.Exception_(timestamp=self.host.now(), type="exec", severity=0, note=note))
        job.finished = True  # no wait status will ever come
        self.host.job_stopped(job)
