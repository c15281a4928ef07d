"""Fault tests: real processes killed with SIGKILL, and Redis servers of their own stopped, killed
or starved. `make test` runs a few rounds; `make faults` sets JOBJOURNAL_FAULT_ROUNDS higher."""

import os
import shutil
import tempfile

import pytest

from jobjournal.common.connection import connect
from jobjournal.common.redis_server import EmbeddedRedis
from jobjournal.common.settings import Settings
from tests.conftest import TEST_REDIS_URL_VAR, external_redis_url


@pytest.fixture
def rounds() -> int:
    return int(os.environ.get("JOBJOURNAL_FAULT_ROUNDS", "5"))


@pytest.fixture
def own_redis():
    """A Redis of this test's own (not the session's), which it may stop, kill or reconfigure:
    (server, client)."""
    if external_redis_url():
        pytest.skip(f"uses an embedded server of its own; {TEST_REDIS_URL_VAR} is set")
    home = tempfile.mkdtemp(prefix="jj-r-", dir="/tmp")
    server = EmbeddedRedis(home)
    server.start()
    client = connect(Settings(redis_url=server.url, home=home))
    yield server, client
    client.close()
    server.stop()
    shutil.rmtree(home, ignore_errors=True)
