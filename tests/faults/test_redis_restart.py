"""Redis restarted under load, with the persistence the project ships (AOF): what an
acknowledged submission survives, and everything reconnects without operator action."""

import os
import signal
import threading
import time

import pytest
import redis as redis_lib

from tests.faults.checks import assert_all_records_agree, assert_each_job_lived_once
from tests.helpers import submit, wait_caught_up, wait_for, wait_inactive

pytestmark = pytest.mark.timeout(300)


class PatientBurst:
    """Submits jobs until stopped, through an outage; only acknowledged ids count."""

    def __init__(self, client):
        self.client = client
        self.acknowledged: list[int] = []
        self.refused = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run)

    def _run(self):
        while not self.stop.is_set():
            try:
                self.acknowledged += submit(self.client, 20, sim={"runtime": 0.01})
            except (redis_lib.ConnectionError, redis_lib.BusyLoadingError, redis_lib.TimeoutError):
                self.refused += 1
            time.sleep(0.01)


def _restart_under_load(own_redis, spawn, stop_server) -> None:
    server, client = own_redis
    env = {"JOBJOURNAL_REDIS_URL": server.url}
    spawn("manager", env=env)
    spawn("lister", env=env)
    spawn("worker", "--queue", "ingest", env=env)
    burst = PatientBurst(client)
    burst.thread.start()
    wait_for(lambda: len(burst.acknowledged) > 500, timeout=30)
    stop_server(server)
    # down until a submission failed after all of the client's own retries
    wait_for(lambda: burst.refused > 0, what="the outage to be seen")
    server.start()
    before = len(burst.acknowledged)
    wait_for(lambda: len(burst.acknowledged) > before + 300, timeout=30, what="submissions after the restart")
    burst.stop.set()
    burst.thread.join(30)
    through_rq = _submit_through_rq(client)  # the rq ingest worker reconnected too
    wait_inactive(client, burst.acknowledged + through_rq, timeout=120)
    wait_caught_up(client, timeout=60)
    assert_each_job_lived_once(client, burst.acknowledged)
    assert_all_records_agree(client)


def _submit_through_rq(client) -> list[int]:
    from jobjournal.common.errors import RequestFailed
    from jobjournal.common.jobspec import make_jobspec
    from jobjournal.manager import client as api

    for _ in range(20):
        try:
            return api.submit(client, [make_jobspec(command=["after-restart"])], timeout=5)
        except (RequestFailed, redis_lib.ConnectionError, redis_lib.BusyLoadingError):
            time.sleep(0.5)
    raise AssertionError("no ingest worker answered after the Redis restart")


def test_after_a_clean_redis_restart_everything_acknowledged_is_there_and_all_reconnect(own_redis, spawn):
    _restart_under_load(own_redis, spawn, lambda server: server.stop())


def test_with_fsync_always_a_redis_crash_loses_nothing_acknowledged(own_redis, spawn):
    own_redis[1].config_set("appendfsync", "always")

    def crash(server):
        os.kill(server.pid(), signal.SIGKILL)
        wait_for(lambda: not server.is_running(), timeout=10)

    _restart_under_load(own_redis, spawn, crash)
