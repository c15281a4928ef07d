"""What every command shares: settings, a lazily made Redis client, error translation."""

from __future__ import annotations

import math
import pwd

import click
import redis as redis_lib

from jobjournal.common.connection import connect, connect_queues, queue_url, redis_url
from jobjournal.common.durations import parse_duration
from jobjournal.common.errors import QUEUED_EXIT, JobJournalError, Queued
from jobjournal.common.ids import parse_job_id
from jobjournal.common.settings import Settings, load_settings


class App:
    def __init__(self, settings: Settings):
        self.settings = settings
        self._redis = None
        self._queues = None

    @property
    def redis(self):
        """The store."""
        if self._redis is None:
            self._redis = connect(self.settings)
        return self._redis

    @property
    def queue_redis(self):
        """rq's Redis: the store's own client when it is the same server."""
        if self._queues is None:
            same = queue_url(self.settings, start=False) == redis_url(self.settings, start=False)
            self._queues = self.redis if same else connect_queues(self.settings)
        return self._queues


class Group(click.Group):
    """A click group that turns jobjournal's errors into one-line messages."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except Queued as err:
            raise QueuedException(str(err)) from err
        except JobJournalError as err:
            raise click.ClickException(str(err)) from err
        except redis_lib.exceptions.NoPermissionError as err:
            raise click.ClickException(f"Redis refused it: {err} (this command needs a role that may use those keys; "
                                       "see deploy/users.acl)") from err
        except redis_lib.RedisError as err:  # out of memory, a dropped connection, a restart mid-request
            raise click.ClickException(f"Redis error: {err}") from err


class QueuedException(click.ClickException):
    """A request left queued (no manager runs): its own exit status, so scripts can tell."""

    exit_code = QUEUED_EXIT


pass_app = click.make_pass_decorator(App)


def make_app(ctx: click.Context) -> App:
    try:
        return App(load_settings())
    except JobJournalError as err:
        raise click.ClickException(str(err)) from err


class JobIdType(click.ParamType):
    name = "ID"

    def convert(self, value, param, ctx):
        if isinstance(value, int):
            return value
        try:
            return parse_job_id(value)
        except JobJournalError as err:
            self.fail(str(err), param, ctx)


JOB_ID = JobIdType()

class DurationType(click.ParamType):
    """A Flux Standard Duration (RFC 23, `common/durations.py`): '30', '250ms', '1.5m', '2h', '1d', 'inf'."""

    name = "DURATION"

    def __init__(self, finite: bool = False):
        self.finite = finite

    def convert(self, value, param, ctx):
        if isinstance(value, int | float):
            return float(value)
        try:
            seconds = parse_duration(value)
        except ValueError as err:
            self.fail(str(err), param, ctx)
        if self.finite and math.isinf(seconds):
            self.fail(f"{value!r}: this duration must be finite", param, ctx)
        return seconds


FINITE_DURATION = DurationType(finite=True)
DURATION = DurationType()


def userid_of(text: str) -> int | None:
    """-u USER: a user name, a uid, or 'all' (None: every user's)."""
    if text == "all":
        return None
    if text.isdigit():
        return int(text)
    try:
        return pwd.getpwnam(text).pw_uid
    except KeyError as err:
        raise click.BadParameter(f"no such user {text!r}", param_hint="-u") from err
