"""Connecting to Redis: the configured URL, or the embedded server started on demand."""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode, urlsplit

import redis
from redis.backoff import ExponentialBackoff
from redis.cluster import RedisCluster
from redis.exceptions import RedisClusterException
from redis.retry import Retry

from jobjournal.common.errors import LoginRefused, RedisUnavailable
from jobjournal.common.redis_cluster import SCHEME as CLUSTER_SCHEME
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


def queue_url(settings: Settings, start: bool = True) -> str:
    """The URL of rq's Redis: `queue_redis_url`, else the store's (which must then be a standalone
    server: rq does not run on Redis Cluster)."""
    if settings.queue_redis_url:
        return settings.queue_redis_url
    if settings.redis_url.startswith(CLUSTER_SCHEME):
        raise RedisUnavailable("the store is a Redis Cluster, where rq cannot run: set JOBJOURNAL_QUEUE_REDIS_URL "
                               "to a standalone Redis for the queues")
    return redis_url(settings, start=start)


def connect(settings: Settings, start: bool = True) -> redis.Redis:
    """A checked client of the store (bytes responses); RedisUnavailable with a one-line reason
    otherwise. A URL `redis+cluster://host:port` names a node of a Redis Cluster: the client is
    redis-py's cluster client, which finds the others."""
    return connect_url(redis_url(settings, start=start), "JOBJOURNAL_REDIS_URL" if settings.redis_url else "")


def connect_queues(settings: Settings, start: bool = True) -> redis.Redis:
    """A checked client of rq's Redis (see queue_url)."""
    named = "JOBJOURNAL_QUEUE_REDIS_URL" if settings.queue_redis_url else ""
    return connect_url(queue_url(settings, start=start), named)


def redacted(url: str) -> str:
    """`url` without its password (user:password@ -> user:***@), for messages and logs."""
    return re.sub(r"(//[^/@:]*:)[^/@]*@", r"\1***@", url)


def without_credentials(url: str) -> str:
    """`url` without the user and password it names (in its authority or its query)."""
    parts = urlsplit(url)
    netloc = parts.netloc.rpartition("@")[2]
    query = urlencode([(name, value) for name, value in parse_qsl(parts.query, keep_blank_values=True)
                       if name not in ("username", "password")])
    return f"{parts.scheme}://{netloc}{parts.path}" + (f"?{query}" if query else "")


def connect_url(url: str, setting: str = "", login: tuple[str, str] | None = None) -> redis.Redis:
    """A checked client of the Redis at `url` (`setting`: the variable it came from, named in errors),
    logged in as `login` (ACL user, password) when given, instead of the user the URL names."""
    options = dict(
        socket_connect_timeout=5,
        socket_timeout=SOCKET_TIMEOUT,
        retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), 3),
    )
    if login is not None:  # redis-py lets a URL's credentials win over keyword ones: take them out
        url = without_credentials(url)
        options.update(username=login[0], password=login[1])
    try:
        if url.startswith(CLUSTER_SCHEME):
            client = RedisCluster.from_url("redis://" + url[len(CLUSTER_SCHEME) :], **options)
        else:
            client = redis.Redis.from_url(url, health_check_interval=30, **options)
    except RedisClusterException as err:  # no node took the connection (its cause: why)
        if isinstance(err.__cause__, redis.AuthenticationError):
            raise LoginRefused(f"Redis at {redacted(url)} refused the login: {err.__cause__}") from err
        raise RedisUnavailable(f"cannot reach Redis at {redacted(url)}: {err}") from err
    except redis.RedisError as err:  # the cluster client asks a node for the slots at once
        raise RedisUnavailable(f"cannot reach Redis at {redacted(url)}: {err}") from err
    except ValueError as err:  # not a URL redis-py knows
        named = f" ({setting})" if setting else ""
        raise RedisUnavailable(f"{redacted(url)!r}{named} is not a Redis URL: {err}; use redis://HOST:PORT/DB, "
                               f"rediss://, unix:///PATH or {CLUSTER_SCHEME}HOST:PORT") from err
    try:
        client.ping()
    except redis.AuthenticationError as err:
        client.close()
        raise LoginRefused(f"Redis at {redacted(url)} refused the login: {err}") from err
    except redis.RedisError as err:
        client.close()
        raise RedisUnavailable(f"cannot reach Redis at {redacted(url)}: {err}") from err
    return client
