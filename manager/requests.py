"""Handling the manager's inbox requests; each returns the Reply for its sender."""

from __future__ import annotations

import logging
from collections.abc import Callable

from jobjournal.common import events as ev
from jobjournal.common import messages
from jobjournal.common.ids import f58
from jobjournal.common.journal import stream_order
from jobjournal.common.layout import Layout
from jobjournal.common.messages import Reply
from jobjournal.common.states import PENDING, State
from jobjournal.manager.jobs import Job
from jobjournal.manager.lifecycle import Lifecycle
from jobjournal.manager.purge import purge_candidates

ADMIN_USERID = 0

log = logging.getLogger("jobjournal.manager")


class RequestHandler:
    """Turns each request into changes to the lifecycle's jobs and a Reply.

    `purge(job_ids)` removes inactive jobs (returns those removed); `start_journal(request)`
    queues a full-journal request (its backlog starts once the step's events are posted)."""

    def __init__(
        self,
        redis,
        layout: Layout,
        life: Lifecycle,
        purge: Callable[[list[int]], list[int]],
        start_journal: Callable[[messages.JournalRequest], None],
    ):
        self.redis = redis
        self.layout = layout
        self.life = life
        self.purge = purge
        self.start_journal = start_journal
        self.posted_up_to: dict[int, str] = {}
        """Partition index -> its inbox cursor at restore: that partition already has the effects
        of every entry up to it (a restart replays the inbox from the lowest cursor)."""
        self._entry: tuple[int, int] | None = None

    def handle(self, request: messages.AnyRequest, entry_id: str = "") -> Reply | None:
        """The request's changes, and its Reply; `entry_id` is its inbox entry's id."""
        self._entry = stream_order(entry_id) if entry_id else None
        match request:
            case messages.SubmitJobs():
                return self._submit(request)
            case messages.Cancel():
                return self._change(request.ids, request.userid, self._cancel_one(request))
            case messages.RaiseException():
                return self._change(request.ids, request.userid, self._raise_one(request))
            case messages.SetUrgency():
                return self._change([request.id], request.userid, self._urgency_one(request))
            case messages.Purge():
                return self._purge(request)
            case messages.JournalRequest():
                self.start_journal(request)
                return None
            case messages.ExecStarted() | messages.ExecFinished():
                self._exec_report(request)
                return None

    # -- submissions
    def _submit(self, request: messages.SubmitJobs) -> Reply:
        existing = self._existing([job.id for job in request.jobs if job.id not in self.life.jobs])
        for new in request.jobs:
            if new.id in self.life.jobs or new.id in existing:
                continue  # a replay after a restart, or the same entry delivered twice
            job = Job(new.id, new.userid, new.jobspec, new.t_submit, new.jobspec.urgency)
            self.life.submit(job)
        return Reply(data=[job.id for job in request.jobs])

    def _existing(self, job_ids: list[int]) -> set[int]:
        """Which of these ids already have an eventlog (one round trip per inbox entry)."""
        pipe = self.redis.pipeline(transaction=False)
        for job_id in job_ids:
            pipe.exists(self.layout.partition_of(job_id).job_eventlog(job_id))
        return {job_id for job_id, found in zip(job_ids, pipe.execute(), strict=True) if found}

    def _posted(self, job_id: int) -> bool:
        """Whether the job's partition already has the current entry's effects (only while a
        restarted manager replays what one partition has and another has not)."""
        if not self.posted_up_to or self._entry is None:
            return False
        cursor = self.posted_up_to.get(self.layout.partition_of(job_id).index)
        return cursor is not None and self._entry <= stream_order(cursor)

    # -- changes to existing jobs
    def _change(self, job_ids: list[int], userid: int, change) -> Reply:
        errors = {}
        missing = [job_id for job_id in job_ids if job_id not in self.life.jobs]
        reasons = self._why_unknown(missing)
        for job_id in job_ids:
            job = self.life.jobs.get(job_id)
            if self._posted(job_id):
                error = None  # its partition has this entry's effect: the restart replays it
            elif job is None:
                error = reasons[job_id]
            elif userid not in (job.userid, ADMIN_USERID):
                error = "permission denied: not the job's owner"
            else:
                error = change(job)
            if error:
                errors[str(job_id)] = error
        return Reply(errors=errors)

    def _cancel_one(self, request: messages.Cancel):
        def cancel(job: Job) -> str | None:
            if job.state == State.CLEANUP:
                return "job is already finishing"
            self.life.cancel(job, request.userid, request.note)
            return None

        return cancel

    def _raise_one(self, request: messages.RaiseException):
        def raise_(job: Job) -> str | None:
            if request.severity == 0 and job.state == State.CLEANUP:
                return "job is already finishing"
            if request.severity == 0:
                self.life.cancel(job, request.userid, request.note, kind=request.type)
            else:
                event = ev.Exception_(
                    timestamp=self.life.now(),
                    type=request.type,
                    severity=request.severity,
                    note=request.note,
                    userid=request.userid,
                )
                self.life.post(job, event)
            return None

        return raise_

    def _urgency_one(self, request: messages.SetUrgency):
        def urgency(job: Job) -> str | None:
            if not job.state & (PENDING | State.NEW):
                return f"job is not pending (state {job.state.name})"
            self.life.set_urgency(job, request.urgency, request.userid)
            return None

        return urgency

    def _why_unknown(self, job_ids: list[int]) -> dict[int, str]:
        if not job_ids:
            return {}
        pipe = self.redis.pipeline(transaction=False)
        for job_id in job_ids:
            pipe.zscore(self.layout.partition_of(job_id).inactive_jobs(), job_id)
        return {
            job_id: "job is inactive" if score is not None else "no such job"
            for job_id, score in zip(job_ids, pipe.execute(), strict=True)
        }

    # -- purge
    def _purge(self, request: messages.Purge) -> Reply:
        """Purge the given inactive jobs, or those beyond the limits, only with `force` (as `flux job
        purge`): without it, say how many would go. `inactive`: how many remain."""
        errors = {}
        if request.ids:
            active = [job_id for job_id in request.ids if job_id in self.life.jobs]
            errors = {str(job_id): "cannot purge active job" for job_id in active}
            reasons = self._why_unknown([j for j in request.ids if j not in self.life.jobs])
            errors.update({str(j): reason for j, reason in reasons.items() if reason == "no such job"})
            candidates = [j for j, reason in reasons.items() if reason == "job is inactive"]
        else:
            candidates = self._limit_candidates(request)
        purged = self.purge(candidates) if request.force else []
        data = {"purged": len(purged), "would_purge": len(candidates), "inactive": self._inactive_count()}
        return Reply(errors=errors, data=data)

    def _inactive_count(self) -> int:
        with self.redis.pipeline(transaction=False) as pipe:
            for part in self.layout.partitions:
                pipe.zcard(part.inactive_jobs())
            return sum(pipe.execute())

    def _limit_candidates(self, request: messages.Purge) -> list[int]:
        return purge_candidates(self.redis, self.layout, request.age_limit, request.num_limit, self.life.now())

    # -- reports from the executors
    def _exec_report(self, report) -> None:
        job = self.life.jobs.get(report.id)
        if job is None or job.R is None or job.finished:
            return
        if not self.life.backend.accepts(report):
            log.warning("exec report for job %s refused: not signed by an executor", f58(job.id))
            return
        match report:
            case messages.ExecStarted():
                if not job.started:
                    self.life.post(job, ev.Start(timestamp=self.life.now()))
            case messages.ExecFinished():
                self._exec_finished(job, report)

    def _exec_finished(self, job: Job, report: messages.ExecFinished) -> None:
        if report.timeout:
            self.life.raise_timeout(job)
        if report.status is not None and job.started:
            self.life.post(job, ev.Finish(timestamp=self.life.now(), status=report.status))
        elif report.error and job.fatal is None:
            note = report.error
            self.life.post(job, ev.Exception_(timestamp=self.life.now(), type="exec", severity=0, note=note))
        self.life.job_stopped(job)
