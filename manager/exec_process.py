"""The `process` exec backend: executors (`jobjournal executor`, manager/executor.py) run the jobs'
real commands, as many at once as their slots allow.

The manager dispatches a job once it is allocated and its alloc event is posted, and only while
the live executors have a free slot: without one the job stays pending (SCHED), visibly waiting.
The executor reports `exec-started` and `exec-finished` (with the wait status) through the inbox,
signed with the job's token (manager/exec_dispatch.py), and keeps a heartbeat key alive while the
command runs. A job whose heartbeat is gone, or whose dispatch vanished before it started, ends
with an `exec` exception.
"""

from __future__ import annotations

from collections.abc import Mapping

from jobjournal.common import events as ev
from jobjournal.common import keys
from jobjournal.common.throttle import Throttle
from jobjournal.manager import exec_dispatch
from jobjournal.manager.exec_backend import JobEvents
from jobjournal.manager.jobs import Job

CHECK_INTERVAL = 1.0


class ProcessExec:
    name = "process"

    def __init__(self, queues, host: JobEvents, jobs: Mapping[int, Job]):
        self.queues = queues
        """The queue Redis: dispatch stream, executors, exec keys (kill, heartbeat)."""
        self.host = host
        self.jobs = jobs
        """The manager's active jobs."""
        self._key: bytes | None = None
        self._checks = Throttle(CHECK_INTERVAL)
        self._slots: int | None = None
        """Slots of the live executors, read at each check (None: not yet read)."""
        self._in_exec: set[int] = set()
        """Jobs handed to the executors whose process has not ended: each holds a slot."""
        self._entries: dict[int, str] = {}
        """Dispatch entry of each job not yet started, when known."""
        self._suspects: set[int] = set()
        """Jobs that looked lost at the last check; lost for good if they still do at the next."""
        self._group_made = False
        self._waiting: dict[int, str] | None = None
        """The dispatches no executor has taken, read once for the jobs a restart restores."""

    @property
    def key(self) -> bytes:
        if self._key is None:
            self._key = exec_dispatch.secret(self.queues)
        return self._key

    def accepts(self, report) -> bool:
        """Whether an exec report comes from an executor (its HMAC under the dispatch secret)."""
        return exec_dispatch.authentic(self.key, report)

    def can_start(self) -> bool:
        if self._slots is None:
            self._read_slots()
        return len(self._in_exec) < self._slots

    def start(self, job: Job, now: float) -> None:
        self._in_exec.add(job.id)
        self.host.after_flush(lambda: self._dispatch(job))

    def restore(self, job: Job) -> None:
        """A job allocated before a restart: dispatch it again if no executor has it."""
        self._in_exec.add(job.id)
        if job.started or job.finished:
            return
        self.host.after_flush(lambda: self._redispatch(job))

    def kill(self, job: Job, now: float) -> None:
        self.host.after_flush(lambda: self._kill(job))

    def poll(self, now: float) -> None:
        if not self._checks.due():
            return
        self._waiting = None
        self._in_exec = {job_id for job_id in self._in_exec if self._holds_slot(job_id)}
        self._read_slots()
        suspects, self._suspects = self._suspects, set()
        watched = [self.jobs[job_id] for job_id in self._in_exec if self.jobs[job_id].R is not None]
        with self.queues.pipeline(transaction=False) as pipe:  # every running job's heartbeat at once
            for job in watched:
                pipe.exists(keys.exec_heartbeat(job.id))
            alive = pipe.execute()
        for job, beating in zip(watched, alive, strict=True):
            self._check(job, bool(beating), confirmed=job.id in suspects)

    def forget(self, job: Job) -> None:
        if job.id in self._in_exec:
            exec_dispatch.ask_to_kill(self.queues, job.id)
        self._entries.pop(job.id, None)
        self._suspects.discard(job.id)
        self._in_exec.discard(job.id)

    def _read_slots(self) -> None:
        self._slots = sum(info.slots for info in exec_dispatch.live_executors(self.queues).values())

    def _holds_slot(self, job_id: int) -> bool:
        job = self.jobs.get(job_id)
        return job is not None and not job.finished and not job.released

    def _dispatch(self, job: Job) -> None:
        if job.finished or job.released or job.state is None or job.fatal:
            return
        if not self._group_made:
            exec_dispatch.ensure_group(self.queues)
            self._group_made = True
        self._entries[job.id] = exec_dispatch.dispatch(self.queues, job.id, exec_dispatch.token_for(self.key, job.id))

    def _redispatch(self, job: Job) -> None:
        if self.queues.exists(keys.exec_taken(job.id)):
            return  # an executor has it (or had it: the lost checks end the job if it is gone)
        if self._waiting is None:
            self._waiting = exec_dispatch.waiting(self.queues)
        entry = self._waiting.pop(job.id, None)
        if entry is None:
            self._dispatch(job)
        else:
            self._entries[job.id] = entry

    def _kill(self, job: Job) -> None:
        entry = self._entries.pop(job.id, None)
        if not job.started and entry is not None and exec_dispatch.take(self.queues, entry):
            self._stopped(job)  # withdrawn before any executor took it
            return
        exec_dispatch.ask_to_kill(self.queues, job.id)

    def _check(self, job: Job, beating: bool, confirmed: bool) -> None:
        """End the job with an exception if its executor is gone at two checks in a row."""
        reason = None if beating else self._why_lost(job)
        if reason is None:
            return
        if confirmed:
            self._lost(job, reason)
        else:
            self._suspects.add(job.id)  # its report may still be in the inbox: look again later

    def _why_lost(self, job: Job) -> str | None:
        """Why a job whose heartbeat is gone is lost (None: its dispatch still waits for an executor)."""
        if job.started:
            return "executor lost while running the job"
        entry = self._entries.get(job.id)
        if entry is not None and exec_dispatch.is_waiting(self.queues, entry):
            return None
        return "dispatch vanished before the job started"

    def _lost(self, job: Job, note: str) -> None:
        if job.state is not None and not job.fatal:
            self.host.post(job, ev.Exception_(timestamp=self.host.now(), type="exec", severity=0, note=note))
        exec_dispatch.ask_to_kill(self.queues, job.id)  # a stalled executor that comes back kills it
        self._stopped(job)

    def _stopped(self, job: Job) -> None:
        self._entries.pop(job.id, None)
        self._in_exec.discard(job.id)
        self.host.job_stopped(job)
