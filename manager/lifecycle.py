"""The job lifecycle: posting events, moving jobs through their states, scheduling.

`Lifecycle` holds the state of one leadership term: the active jobs, the resource pool,
the pending queue, timers and the exec backend. Every change goes through `post()`,
which applies the event to the job and queues it for the journal.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict

import msgspec

from jobjournal.common import events as ev
from jobjournal.common.jobspec import redact
from jobjournal.common.resources import make_R
from jobjournal.common.settings import Settings
from jobjournal.common.states import State, priority_for
from jobjournal.manager import exec_dispatch
from jobjournal.manager.exec_backend import ExecBackend
from jobjournal.manager.exec_process import ProcessExec
from jobjournal.manager.exec_sim import SimExec
from jobjournal.manager.jobs import Job
from jobjournal.manager.posting import EventPoster
from jobjournal.manager.scheduler import PendingQueue, Pool
from jobjournal.manager.timers import Timers

log = logging.getLogger("jobjournal.manager")
SETTLE_ROUNDS = 20
CHECKPOINT_EVERY = 1000
"""Units of work (a job advanced, a timer fired, a job scheduled) between two checkpoints (lease
renewed, queued events written): with 60K cores free, one scheduling pass starts 60K jobs."""
SETTLE_BUDGET = 20000
"""Job advances in one settle: a step stays short, and new work is accepted in between."""
_encode = msgspec.json.encode


class Lifecycle:
    def __init__(self, redis, settings: Settings, poster: EventPoster, clock=time.time, checkpoint=lambda: None,
                 queues=None, post_queued=None):
        self.redis = redis
        self.post_queued = post_queued or poster.flush
        """Posts the queued events, with the inbox cursor of the entries handled so far (the manager's)."""
        self.queues = redis if queues is None else queues
        """rq's Redis (the `rq` exec backend's queue), when it is not the store."""
        self.checkpoint = checkpoint
        """Called now and then during long work: the manager renews its lease and writes events."""
        self.settings = settings
        self.poster = poster
        self.now = clock
        self.jobs: dict[int, Job] = {}
        self.pool = Pool(settings.nodes, settings.cores_per_node)
        self.pending = PendingQueue()
        self.timers = Timers()
        self._work = 0
        self._dirty: OrderedDict[int, Job] = OrderedDict()
        """Jobs that may move, oldest first. An OrderedDict: taking the first of a plain dict
        skips every slot deleted before it, which made big steps quadratic."""
        self._after_flush: list = []
        self.backend = self._make_backend(settings.exec_backend)

    def _make_backend(self, name: str) -> ExecBackend:
        match name:
            case "sim":
                return SimExec(self, self.timers)
            case "process" | "rq":
                return ProcessExec(self.queues, self, self.jobs)
        raise ValueError(f"unknown exec backend {name!r}")

    # -- the host interface the exec backends use
    def post(self, job: Job, event: ev.Event, public: bytes = b"", private: bytes = b"") -> None:
        job.apply(event)
        self.poster.add(job.id, event, public, private, final=job.state is State.INACTIVE)
        self._dirty[job.id] = job

    def after_flush(self, action) -> None:
        """Run `action` once the events queued so far are in Redis (side effects go here)."""
        self._after_flush.append(action)

    def job_stopped(self, job: Job) -> None:
        job.finished = True
        self._dirty[job.id] = job

    def raise_restart_exception(self, job: Job, note: str) -> None:
        """End a job a restart cannot carry on as it was (its environment is unreadable, say)."""
        if job.state is not None and job.state is not State.INACTIVE and job.fatal is None:
            self.post(job, ev.Exception_(timestamp=self.now(), type="restart", severity=0, note=note))

    def raise_timeout(self, job: Job) -> None:
        note = "resource allocation expired"
        self.post(job, ev.Exception_(timestamp=self.now(), type="timeout", severity=0, note=note))

    # -- entering jobs
    def submit(self, job: Job) -> None:
        self.jobs[job.id] = job
        spec = job.jobspec
        event = ev.Submit(timestamp=job.t_submit, userid=job.userid, urgency=job.urgency)
        private = _encode(spec.environment) if spec.environment else b""
        self.post(job, event, public=_encode(redact(spec)), private=private)

    def adopt(self, job: Job, previous_backend: str = "") -> None:
        """Take over a job rebuilt from Redis after a manager restart (`previous_backend`: the exec
        backend of the manager before, if known). A running job that this manager cannot carry on
        (its cores are not in this pool, or another backend started it) gets an exception and ends."""
        self.jobs[job.id] = job
        if job.R is not None and not job.freed:
            self.pool.claim(job.allocation)  # its cores are held from its alloc to its free
        match job.state:
            case State.SCHED:
                self.post(job, ev.Restart(timestamp=self.now()))
            case State.RUN:
                self._restore_running(job, previous_backend)
            case State.CLEANUP if job.R is not None and not job.released:
                self.backend.restore(job)  # its command may still run: the backend watches it end
                self._dirty[job.id] = job
            case _:
                self._dirty[job.id] = job

    def _restore_running(self, job: Job, previous_backend: str) -> None:
        previous = _backend_name(previous_backend) if previous_backend else ""
        moved = bool(previous) and previous != self.backend.name
        # first, whatever the pool: the previous backend must not go on running it (or start it)
        runs_elsewhere = moved and not self._take_from_previous_backend(job, previous)
        if not self.pool.holds(job.allocation):
            note = (f"its resources are not in the pool any more ({self.pool.size} nodes of "
                    f"{self.pool.cores_per_node} cores)")
        elif runs_elsewhere:
            note = f"taken or started by the {previous_backend} exec backend, which this manager does not run"
        else:
            self.backend.restore(job)
            return
        self.post(job, ev.Exception_(timestamp=self.now(), type="exec", severity=0, note=note))
        self.backend.restore(job)  # in CLEANUP now: a backend watches its command end, starts nothing

    def _take_from_previous_backend(self, job: Job, previous: str) -> bool:
        """Take the job out of the previous exec backend's hands: True when it never started there
        (the process backend: its dispatch is marked taken, so no executor can take it any more);
        False when it may run there, and its executor, if any, is asked to kill the command (which
        this manager's backend cannot reach)."""
        if previous != "process":
            return not job.started  # the simulator ran in the manager that stopped
        if not job.started and exec_dispatch.claim_job(self.queues, job.id, WITHDRAWN):
            return True
        exec_dispatch.ask_to_kill(self.queues, job.id)
        return False

    def forget(self, job_id: int) -> None:
        """Drop a job this manager can no longer post to (its keys are wrong): its cores go back
        to the pool, its command (if any) is stopped, nothing more is posted for it."""
        job = self.jobs.pop(job_id, None)
        if job is None:
            return
        self.pending.remove(job_id)
        self.timers.cancel(job_id)
        self._dirty.pop(job_id, None)
        if job.R is not None and not job.freed:
            self.pool.release(job.allocation)
            job.freed = True
        self.backend.forget(job)

    # -- requests that change jobs
    def cancel(self, job: Job, userid: int, note: str = "", kind: str = "cancel") -> None:
        self.post(job, ev.Exception_(timestamp=self.now(), type=kind, severity=0, note=note, userid=userid))

    def set_urgency(self, job: Job, urgency: int, userid: int) -> None:
        self.post(job, ev.Urgency(timestamp=self.now(), userid=userid, urgency=urgency))
        if job.state == State.SCHED:
            priority = priority_for(urgency)
            self.post(job, ev.Priority(timestamp=self.now(), priority=priority))
            self.pending.add(job.id, priority)

    # -- moving jobs on
    @property
    def busy(self) -> bool:
        """Jobs are still waiting to be moved on (settle stopped at its budget)."""
        return bool(self._dirty)

    def settle(self, budget: int = SETTLE_BUDGET) -> None:
        """Advance jobs that can move (oldest first), fire due timers and schedule, until all is
        still or `budget` job advances are spent; what is left waits for the next call."""
        advanced = 0
        for _ in range(SETTLE_ROUNDS):
            now = self.now()
            for action in self.timers.pop_due(now):
                action()
                self._worked()
            while self._dirty and advanced < budget:
                _, job = self._dirty.popitem(last=False)
                self._advance(job)
                advanced += 1
                self._worked()
            self._schedule(self.now())
            next_due = self.timers.next_due()
            if advanced >= budget or not self._dirty and (next_due is None or next_due > self.now()):
                return

    def _worked(self) -> None:
        self._work += 1
        if self._work % CHECKPOINT_EVERY == 0:
            self.checkpoint()

    def poll_backend(self) -> None:
        self.backend.poll(self.now())

    def run_after_flush(self) -> None:
        actions, self._after_flush = self._after_flush, []
        for action in actions:
            action()

    def _advance(self, job: Job) -> None:
        now = self.now()
        match job.state:
            case State.NEW:
                self.post(job, ev.Validate(timestamp=now))
            case State.DEPEND:
                self.post(job, ev.Depend(timestamp=now))
            case State.PRIORITY:
                self._prioritize(job, now)
            case State.CLEANUP:
                self._cleanup(job, now)
            case State.INACTIVE:
                self.pending.remove(job.id)
                self.timers.cancel(job.id)
                self.jobs.pop(job.id, None)

    def _prioritize(self, job: Job, now: float) -> None:
        priority = priority_for(job.urgency)
        self.post(job, ev.Priority(timestamp=now, priority=priority))
        reason = self.pool.satisfiable(job.jobspec)
        if reason:
            note = f"unsatisfiable request: {reason}"
            self.post(job, ev.Exception_(timestamp=now, type="alloc", severity=0, note=note))
        else:
            self.pending.add(job.id, priority)

    def _cleanup(self, job: Job, now: float) -> None:
        self.pending.remove(job.id)
        if job.R is not None and not job.finished:
            if not job.killing:
                job.killing = True
                self.backend.kill(job, now)
            return
        if job.R is not None and not job.released:
            self.post(job, ev.Release(timestamp=now))
        if job.R is not None and not job.freed:  # a crash may have come between release and free
            self.post(job, ev.Free(timestamp=now))
            self.pool.release(job.allocation)
        self.post(job, ev.Clean(timestamp=now))

    def _schedule(self, now: float) -> None:
        if self.poster.frees_queued and self.poster.layout.size > 1 and self.pending.first() is not None:
            # frees are posted before any allocation that may take their cores, so a crash between two
            # partitions' writes never gives one core to two jobs (with the cursor of the entries handled)
            self.post_queued()
        while (first := self.pending.first()) is not None:
            job_id, priority = first
            if priority == 0:
                break  # held; everything after it is held too
            job = self.jobs[job_id]
            if not self.backend.can_start():
                break  # no executor has a free slot: the job waits in SCHED
            allocation = self.pool.allocate(job.jobspec)
            if allocation is None:
                break
            self.pending.pop_first()
            job.R, job.held = make_R(allocation, now, job.jobspec.duration), allocation
            self.post(job, ev.Alloc(timestamp=now), public=_encode(job.R))
            self.backend.start(job, now)
            self._worked()


WITHDRAWN = "withdrawn by a manager of another exec backend"
"""What a job's `taken` mark says when a restarted manager took it from the executors' reach."""


def _backend_name(setting: str) -> str:
    return "process" if setting == "rq" else setting
