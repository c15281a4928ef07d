"""What an exec backend is, and what it may do to the jobs it runs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from jobjournal.common import events as ev
from jobjournal.manager.jobs import Job


class JobEvents(Protocol):
    """The lifecycle's side of a backend: how a backend moves the jobs it runs (manager/lifecycle.py)."""

    now: Callable[[], float]
    """The manager's clock."""

    def post(self, job: Job, event: ev.Event, public: bytes = b"", private: bytes = b"") -> None:
        """Apply an event to the job and queue it for the journal."""

    def job_stopped(self, job: Job) -> None:
        """The job's process is gone (no wait status will come after this)."""

    def raise_timeout(self, job: Job) -> None:
        """Post the job's timeout exception."""

    def after_flush(self, action: Callable[[], None]) -> None:
        """Run `action` once the events queued so far are in Redis."""


class ExecBackend(Protocol):
    name: str

    def can_start(self) -> bool:
        """Whether a job allocated now could run at once (an executor has a free slot)."""

    def accepts(self, report) -> bool:
        """Whether an exec report (messages.ExecStarted, ExecFinished) comes from where jobs run."""

    def start(self, job: Job, now: float) -> None:
        """Run an allocated job."""

    def restore(self, job: Job) -> None:
        """Carry on a job a manager before a restart allocated."""

    def kill(self, job: Job, now: float) -> None:
        """Stop the job (it is in CLEANUP)."""

    def poll(self, now: float) -> None:
        """Look after running jobs (once a step)."""

    def forget(self, job: Job) -> None:
        """Stop looking after a job the manager dropped (stop its command, if it has one), posting nothing."""
