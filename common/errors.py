"""The one error root of jobjournal; every package raises subclasses of it."""


class JobJournalError(Exception):
    """Root of every error jobjournal raises on purpose."""


class InvalidJobspec(JobJournalError):
    """A jobspec failed validation; the message names the bad field."""


class InvalidJobId(JobJournalError):
    """A string is not a job id in any accepted form."""


class NoSuchJob(JobJournalError):
    """The job id is unknown (never submitted, or purged)."""


class RedisUnavailable(JobJournalError):
    """Redis could not be reached."""


class LoginRefused(RedisUnavailable):
    """Redis refused the user name and password given (a wrong one, or a disabled user)."""


class CorruptEntry(JobJournalError):
    """A stream entry could not be decoded."""


class RequestFailed(JobJournalError):
    """The manager refused or could not answer a request."""


class StillActive(RequestFailed):
    """A wait for a job to end ran out of time; the job goes on (`job wait` exits WAIT_GAVE_UP)."""


class Queued(RequestFailed):
    """The request is in the manager's inbox, but no manager runs: it takes effect when one starts
    (the CLI exits with QUEUED_EXIT)."""


QUEUED_EXIT = 3
"""The CLI's exit status when a request was queued and no manager runs to carry it out."""


class LeaseLost(JobJournalError):
    """Another process holds the lease (the manager's or the lister's): this one must stop writing."""


class StaleView(JobJournalError):
    """The view moved on without us (another lister worker applied the batch)."""
