"""Errors of the lister package."""

from jobjournal.common.errors import JobJournalError


class ListerError(JobJournalError):
    """Root of the lister's errors."""


class SharedRebuildFailed(ListerError):
    """A rebuild shared with helper processes went wrong: build again alone."""


class ViewNotReady(ListerError):
    """No complete view exists yet (the first one is being built)."""


class QueryError(ListerError):
    """A query is malformed (unknown attribute, bad constraint) or too costly."""
