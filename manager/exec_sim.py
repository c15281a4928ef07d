"""The `sim` exec backend: no process; a job ends after its jobspec's simulated runtime.

The jobspec's `sim` section gives the runtime and exit code; a runtime beyond the time
limit (`duration`) ends in a timeout exception. Everything is derived from the eventlog,
so a restarted manager carries running jobs on.
"""

from __future__ import annotations

import signal

from jobjournal.common import events as ev
from jobjournal.common.states import State
from jobjournal.manager.exec_backend import JobEvents
from jobjournal.manager.jobs import Job
from jobjournal.manager.timers import Timers

SIGKILL_STATUS = signal.SIGKILL.value


class SimExec:
    name = "sim"

    def __init__(self, host: JobEvents, timers: Timers):
        self.host = host
        self.timers = timers

    def can_start(self) -> bool:
        return True

    def accepts(self, report) -> bool:
        return False  # no process reports to a simulation

    def start(self, job: Job, now: float) -> None:
        self.host.post(job, ev.Start(timestamp=now))
        self._arm(job)

    def restore(self, job: Job) -> None:
        """Carry on a running job: its timer again, or its start, if a crash came between its alloc
        and its start (a job in CLEANUP is the lifecycle's to kill)."""
        if job.state is not State.RUN or job.finished:
            return
        if job.started:
            self._arm(job)
        else:
            self.start(job, self.host.now())

    def kill(self, job: Job, now: float) -> None:
        self.timers.cancel(job.id)
        if job.started and not job.finished:
            self.host.post(job, ev.Finish(timestamp=now, status=SIGKILL_STATUS))
        self.host.job_stopped(job)

    def poll(self, now: float) -> None:
        """Nothing to watch: the sim backend has no processes."""

    def forget(self, job: Job) -> None:
        self.timers.cancel(job.id)

    def _arm(self, job: Job) -> None:
        sim = job.jobspec.sim
        runtime = sim.runtime if sim else 0.0
        exit_code = sim.exit_code if sim else 0
        limit = job.jobspec.duration
        if limit and runtime > limit:
            self.timers.set(job.t_start + limit, job.id, lambda: self._expire(job))
        else:
            due = job.t_start + runtime
            self.timers.set(due, job.id, lambda: self._finish(job, exit_code << 8))

    def _finish(self, job: Job, status: int) -> None:
        self.host.post(job, ev.Finish(timestamp=self.host.now(), status=status))
        self.host.job_stopped(job)

    def _expire(self, job: Job) -> None:
        self.host.raise_timeout(job)
        self._finish(job, SIGKILL_STATUS)
