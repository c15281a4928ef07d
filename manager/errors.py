"""Errors of the manager package."""

from jobjournal.common.errors import JobJournalError


class ManagerError(JobJournalError):
    """Root of the manager's errors."""


class LeaseLost(ManagerError):
    """Another manager holds the lease; this one must stop writing."""
