"""Connecting to Redis: the configured URL, or the embedded server started on demand."""

from __future__ import annotations

import redis
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from jobjournal.common.errors import RedisUnavailable
from jobjournal.common.redis_server import EmbeddedRedis
from jobjournal.common.settings import Settings

SOCKET_TIMEOUT = 120.0
"""Longer than any blocking read jobjournal makes."""


def redis_url(settings: Settings, start: bool = True) -> str:
    """The URL to use; starts the embedded server when no URL is configured and `start`."""
    if settings.redis_url:
        return settings.redis_url
    server = EmbeddedRedis(settings.home)
    return server.start() if start else server.url


def connect(settings: Settings, start: bool = True) -> redis.Redis:
    """A checked client (bytes responses); RedisUnavailable with a one-line reason otherwise."""
    url = redis_url(settings, start=start)
    client = redis.Redis.from_url(
        url,
        socket_connect_timeout=5,
        socket_timeout=SOCKET_TIMEOUT,
        health_check_interval=30,
        retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), 3),
    )
    try:
        client.ping()
    except redis.RedisError as err:
        client.close()
        raise RedisUnavailable(f"cannot reach Redis at {url}: {err}") from err
    return client
