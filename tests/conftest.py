"""Fixtures: a real Redis (an embedded server of the session's own, or the dedicated test server
JOBJOURNAL_TEST_REDIS_URL names), managers, workers and processes that clean up."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import pytest

from jobjournal.common.connection import connect
from jobjournal.common.errors import RedisUnavailable
from jobjournal.common.redis_server import EmbeddedRedis
from jobjournal.common.settings import Settings

ROOT = Path(__file__).resolve().parent.parent

TEST_REDIS_URL_VAR = "JOBJOURNAL_TEST_REDIS_URL"
"""Names a Redis given over to the tests (they empty it with FLUSHALL). Not REDIS_URL: that common
name is set on many machines for other things, and the suite must never touch those."""

TEST_CLUSTER_URL_VAR = "JOBJOURNAL_TEST_CLUSTER_URL"
"""Names a Redis Cluster given over to the tests (redis+cluster://host:port of one node); without it
the session starts a local 3-master cluster of its own when a test first needs one."""

KEPT_VARIABLES = (TEST_REDIS_URL_VAR, TEST_CLUSTER_URL_VAR, "JOBJOURNAL_FAULT_ROUNDS")


def external_redis_url() -> str | None:
    """The dedicated test server's URL, if one is configured."""
    return os.environ.get(TEST_REDIS_URL_VAR) or None


def pytest_configure(config):
    # The processes and settings under test read JOBJOURNAL_* from the environment: a developer's
    # own settings (JOBJOURNAL_REDIS_URL, _HOME, _EXEC_BACKEND, ...) must neither reach a server
    # of theirs nor change what the tests see. Each fixture sets what the test needs.
    for name in list(os.environ):
        if name.startswith("JOBJOURNAL_") and name not in KEPT_VARIABLES:
            del os.environ[name]


def pytest_report_header(config):
    url = external_redis_url()
    return f"redis under test: {url} ({TEST_REDIS_URL_VAR})" if url else "redis under test: embedded, the session's own"


class RedisUnderTest:
    """The session's Redis: `url`, and `server` when the session started it (an EmbeddedRedis of
    its own, which a test may stop and restart), None for the external test server."""

    def __init__(self, url: str, server: EmbeddedRedis | None):
        self.url = url
        self.server = server

    @property
    def own(self) -> bool:
        return self.server is not None

    def own_server(self) -> EmbeddedRedis:
        """The server, for a test that stops or restarts it; such a test skips on an external one."""
        if self.server is None:
            pytest.skip(f"restarts the Redis under test, which is not the session's own ({TEST_REDIS_URL_VAR})")
        return self.server


@pytest.fixture(scope="session")
def cluster_url():
    """A Redis Cluster for the tests: JOBJOURNAL_TEST_CLUSTER_URL if set (it must answer), else a
    local 3-master cluster on free ports, started once for the session and stopped after it."""
    from jobjournal.common.redis_cluster import EmbeddedCluster

    url = os.environ.get(TEST_CLUSTER_URL_VAR)
    if url:
        try:
            connect(Settings(redis_url=url)).close()
        except RedisUnavailable as err:
            pytest.exit(f"{TEST_CLUSTER_URL_VAR} is set but unreachable: {err}", returncode=3)
        yield url
        return
    home = tempfile.mkdtemp(prefix="jj-cluster-", dir="/tmp")
    cluster = EmbeddedCluster(home, masters=3)
    try:
        yield cluster.start()
    finally:
        cluster.stop()
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="session")
def redis_server():
    """The Redis under test: JOBJOURNAL_TEST_REDIS_URL if set (it must answer), else an embedded
    server started for this session in a directory of its own, and stopped after it."""
    url = external_redis_url()
    if url:
        try:
            connect(Settings(redis_url=url)).close()
        except RedisUnavailable as err:
            pytest.exit(f"{TEST_REDIS_URL_VAR} is set but unreachable: {err}", returncode=3)
        yield RedisUnderTest(url, None)
        return
    home = tempfile.mkdtemp(prefix="jj-test-", dir="/tmp")
    server = EmbeddedRedis(home)
    try:
        yield RedisUnderTest(server.start(), server)
    finally:
        server.stop(save=False)
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="session")
def redis_url(redis_server) -> str:
    return redis_server.url


@pytest.fixture
def settings(redis_url, tmp_path) -> Settings:
    return Settings(redis_url=redis_url, home=str(tmp_path), lease_ttl=1.0, journal_keep_s=3600)


@pytest.fixture
def redis(redis_url, settings):
    """A client on a freshly emptied database."""
    client = connect(settings)
    client.flushall()
    yield client
    client.close()


@contextlib.contextmanager
def _threaded(settings, make):
    """Start services in threads; yields start(**overrides); stops and joins them after the test."""
    import msgspec

    running: list[tuple[threading.Thread, threading.Event]] = []
    clients = []

    def start(service_args: dict | None = None, **overrides):
        clients.append(connect(settings))
        service = make(clients[-1], msgspec.structs.replace(settings, **overrides), **(service_args or {}))
        stop = threading.Event()
        thread = threading.Thread(target=service.run, args=(stop,), daemon=True)
        thread.start()
        running.append((thread, stop))
        service.stop = stop
        return service

    yield start
    for _, stop in running:
        stop.set()
    for thread, _ in running:
        thread.join(30)  # a service stops within a step; a loaded machine makes steps long
    for client in clients:
        client.close()


@pytest.fixture
def start_manager(redis, settings):
    """Start a Manager in a thread: start_manager(**setting overrides) -> Manager (leading);
    clock=... gives it a clock of the test's (tests/helpers.py SettableClock)."""
    from jobjournal.manager.manager import Manager

    with _threaded(settings, Manager) as start:

        def start_leading(wait: bool = True, clock=None, **overrides):
            manager = start({"clock": clock} if clock is not None else None, **overrides)
            if wait:
                assert manager.leading.wait(30), "manager did not take the lease"
            return manager

        yield start_leading


@pytest.fixture
def start_lister(redis, settings):
    """Start a ListerWorker in a thread: start_lister(wait=True) -> worker (applying live if wait)."""
    from jobjournal.lister.worker import ListerWorker

    with _threaded(settings, ListerWorker) as start:

        def start_applying(wait: bool = True, **overrides):
            worker = start(**overrides)
            if wait:
                assert worker.applying.wait(30), "lister did not start applying"
            return worker

        yield start_applying


@pytest.fixture
def spawn(redis_url, tmp_path):
    """Start `jobjournal ...` processes on the test Redis; all are killed after the test."""
    procs: list[subprocess.Popen] = []

    def start(*args: str, env: dict | None = None) -> subprocess.Popen:
        environ = {
            **os.environ,
            "JOBJOURNAL_REDIS_URL": redis_url,
            "JOBJOURNAL_HOME": str(tmp_path),
            "JOBJOURNAL_LEASE_TTL": "1",
            "JOBJOURNAL_JOURNAL_KEEP_S": "3600",  # keep whole journals: the checks compare them
            **(env or {}),
        }
        log = open(tmp_path / f"proc-{len(procs)}.log", "w")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen(
            [sys.executable, "-m", "jobjournal", *args],
            env=environ,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        proc.log_path = log.name
        log.close()
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        # the whole session: a lister's forked helpers too, even when the test killed the lister
        # itself (the group id cannot be reused while a member of the group lives)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)


@pytest.fixture
def cli(redis_url, tmp_path, monkeypatch):
    """Run the CLI in-process on the test Redis: cli(*args) -> click Result."""
    from click.testing import CliRunner

    from jobjournal.cli import main

    monkeypatch.setenv("JOBJOURNAL_REDIS_URL", redis_url)
    monkeypatch.setenv("JOBJOURNAL_HOME", str(tmp_path))
    monkeypatch.setenv("JOBJOURNAL_REQUEST_TIMEOUT", "10")
    runner = CliRunner()

    def run(*args: str):
        return runner.invoke(main, list(args), catch_exceptions=False)

    return run
