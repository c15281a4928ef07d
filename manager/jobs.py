"""The manager's in-memory record of an active job, kept by applying its events."""

from __future__ import annotations

from dataclasses import dataclass

import msgspec

from jobjournal.common import events as ev
from jobjournal.common.jobspec import Jobspec, decode_environment, decode_jobspec
from jobjournal.common.resources import R, decode_idset, decode_R
from jobjournal.common.states import State, next_state


@dataclass(slots=True, eq=False)
class Job:
    id: int
    userid: int
    jobspec: Jobspec
    """Full jobspec, environment included; never leaves the manager."""
    t_submit: float
    urgency: int
    state: State | None = None
    priority: int | None = None
    R: R | None = None
    started: bool = False
    t_start: float = 0.0
    finished: bool = False
    released: bool = False
    freed: bool = False
    killing: bool = False
    fatal: ev.Exception_ | None = None
    held: dict[int, list[int]] | None = None
    """The cores R names, by rank: the scheduler's allocation, or R decoded once (after a restart)."""

    @property
    def allocation(self) -> dict[int, list[int]] | None:
        if self.R is None:
            return None
        if self.held is None:
            self.held = {
                rank: decode_idset(entry.children.get("core", ""))
                for entry in self.R.execution.R_lite
                for rank in decode_idset(entry.rank)
            }
        return self.held

    def apply(self, event: ev.Event) -> None:
        """Move the job by one event (the same code for live posting and for restore)."""
        self.state = next_state(self.state, event)
        match event:
            case ev.Urgency(urgency=urgency):
                self.urgency = urgency
            case ev.Priority(priority=priority):
                self.priority = priority
            case ev.Start(timestamp=timestamp):
                self.started, self.t_start = True, timestamp
            case ev.Finish():
                self.finished = True
            case ev.Release(final=True):
                self.released = True
            case ev.Free():
                self.freed = True
            case ev.Exception_(severity=0) if self.fatal is None:
                self.fatal = event


def restore_job(job_id: int, entries: list[dict[bytes, bytes]], environment: bytes | None) -> Job:
    """Rebuild a Job from its eventlog entries (which hold jobspec and R) and environment."""
    eventlog = [ev.decode_entry(fields) for fields in entries]
    submit = eventlog[0]
    if not isinstance(submit, ev.Submit):
        raise ValueError(f"job {job_id}: eventlog does not start with submit")
    jobspec_data, r = ev.eventlog_attachments(entries)
    if jobspec_data is None:
        raise ValueError(f"job {job_id}: submit entry has no jobspec")
    jobspec = decode_jobspec(jobspec_data)
    if environment:
        jobspec = msgspec.structs.replace(jobspec, environment=decode_environment(environment))
    job = Job(job_id, submit.userid, jobspec, submit.timestamp, submit.urgency)
    if r:
        job.R = decode_R(r)
    for event in eventlog:
        job.apply(event)
    return job
