"""Logging a person in for a web action: HTTP Basic credentials, which this server does not check
itself, but logs in to Redis with as that ACL user (Redis checks the password; a request then goes
out on that login, proved as that user). A user whose login failed waits FAILED_LOGIN_WAIT_S
before the next try is put to Redis (no guessing passwords at Redis' speed)."""

from __future__ import annotations

import base64
import binascii
import contextlib
import threading
import time
from typing import NamedTuple

from starlette.requests import Request

from jobjournal.common.connection import connect_url, redis_url
from jobjournal.common.errors import JobJournalError, LoginRefused, RedisUnavailable

CHALLENGE = {"WWW-Authenticate": 'Basic realm="jobjournal actions", charset="UTF-8"'}
FAILED_LOGIN_WAIT_S = 1.0


class ActionRefused(JobJournalError):
    def __init__(self, status: int, message: str, headers: dict | None = None):
        super().__init__(message)
        self.status, self.headers = status, headers or {}


def credentials(request: Request) -> tuple[str, str]:
    """(user, password) of the request's Basic Authorization header; 401 (with a challenge) without."""
    scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        raise ActionRefused(401, "log in as your Redis ACL user to act on jobs", CHALLENGE)
    try:
        user, colon, password = base64.b64decode(encoded, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError) as err:
        raise ActionRefused(400, "the Authorization header is not Basic credentials") from err
    if not colon or not user:
        raise ActionRefused(401, "log in as your Redis ACL user to act on jobs", CHALLENGE)
    return user, password


class Login(NamedTuple):
    """A person's clients: of the store, and of rq's Redis (their requests go through rq)."""

    store: object
    queues: object


class LoginGuard:
    """When each user's last failed login was (one per app, in its state)."""

    def __init__(self, clock=time.monotonic):
        self._failed: dict[str, float] = {}
        self._lock = threading.Lock()
        self._clock = clock

    @contextlib.contextmanager
    def logged_in(self, settings, user: str, password: str):
        """Login(store, queues): clients logged in as `user` (rq's Redis the store's unless
        JOBJOURNAL_QUEUE_REDIS_URL names another), closed after; ActionRefused if Redis refuses."""
        self._wait_out(user)
        with self._client(redis_url(settings, start=False), user, password) as store:
            if not settings.queue_redis_url:
                yield Login(store, store)
                return
            with self._client(settings.queue_redis_url, user, password) as queues:
                yield Login(store, queues)

    @contextlib.contextmanager
    def _client(self, url: str, user: str, password: str):
        try:
            redis = connect_url(url, login=(user, password))
        except LoginRefused as err:
            self._note_failure(user)
            raise ActionRefused(401, f"Redis refused the login of {user}: log in as your Redis ACL user",
                                CHALLENGE) from err
        except RedisUnavailable as err:
            raise ActionRefused(503, "Redis could not be reached; try again") from err
        try:
            yield redis
        finally:
            redis.close()

    def _wait_out(self, user: str) -> None:
        with self._lock:
            failed = self._failed.get(user)
            if failed is not None and self._clock() - failed < FAILED_LOGIN_WAIT_S:
                raise ActionRefused(429, f"the last login of {user} failed a moment ago: wait a second")
            self._failed.pop(user, None)

    def _note_failure(self, user: str) -> None:
        with self._lock:
            if len(self._failed) > 10_000:  # bounded: forget the failures of the long past
                self._failed.clear()
            self._failed[user] = self._clock()
