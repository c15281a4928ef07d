"""Fixtures: a real Redis (embedded, or REDIS_URL), managers, workers and processes that clean up."""

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


@pytest.fixture(scope="session")
def redis_url():
    """The Redis under test: REDIS_URL if set (must answer), else an embedded server of our own."""
    url = os.environ.get("REDIS_URL")
    if url:
        try:
            connect(Settings(redis_url=url)).close()
        except RedisUnavailable as err:
            pytest.exit(f"REDIS_URL is set but unreachable: {err}", returncode=3)
        yield url
        return
    home = tempfile.mkdtemp(prefix="jj-test-", dir="/tmp")
    server = EmbeddedRedis(home)
    try:
        yield server.start()
    finally:
        server.stop()
        shutil.rmtree(home, ignore_errors=True)


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

    def start(**overrides):
        clients.append(connect(settings))
        service = make(clients[-1], msgspec.structs.replace(settings, **overrides))
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
        thread.join(10)
    for client in clients:
        client.close()


@pytest.fixture
def start_manager(redis, settings):
    """Start a Manager in a thread: start_manager(**setting overrides) -> Manager (leading)."""
    from jobjournal.manager.manager import Manager

    with _threaded(settings, Manager) as start:

        def start_leading(wait: bool = True, **overrides):
            manager = start(**overrides)
            if wait:
                assert manager.leading.wait(10), "manager did not take the lease"
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
                assert worker.applying.wait(20), "lister did not start applying"
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
        if proc.poll() is None:
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
