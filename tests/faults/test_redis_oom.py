"""Redis out of memory: a command says so in one line, and the long-running processes outlive it
and go on once memory is back. (The ingest worker's loop also restarts rq's worker after any Redis
error, out of memory included; this test does not force rq's own loop into one.)"""

import os
import subprocess
import sys

import pytest

from jobjournal.common import keys
from jobjournal.common.jobspec import make_jobspec
from jobjournal.common.keys import LEGACY
from jobjournal.manager import client
from tests.conftest import ROOT
from tests.faults.checks import assert_all_records_agree, assert_each_job_lived_once
from tests.helpers import submit, wait_caught_up, wait_for, wait_inactive

pytestmark = pytest.mark.timeout(120)


def test_out_of_memory_is_one_line_for_a_command_and_the_worker_and_manager_outlive_it(own_redis, spawn, tmp_path):
    server, redis = own_redis
    env = {"JOBJOURNAL_REDIS_URL": server.url}
    spawn("manager", env=env)
    worker = spawn("worker", env=env)
    wait_for(lambda: redis.exists(keys.manager_lease()), what="the manager to lead")
    [before] = client.submit(redis, [make_jobspec(command=["true"], sim={"runtime": 0})])
    wait_inactive(redis, [before])
    redis.config_set("maxmemory-policy", "noeviction")
    redis.config_set("maxmemory", max(1, int(redis.info("memory")["used_memory"]) - 1024 * 1024))
    cli_env = {**os.environ, **env, "JOBJOURNAL_HOME": str(tmp_path), "JOBJOURNAL_REQUEST_TIMEOUT": "5"}
    result = subprocess.run([sys.executable, "-m", "jobjournal", "submit", "--", "true"], cwd=ROOT, timeout=60,
                            capture_output=True, text=True, env=cli_env)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    [line] = result.stderr.strip().splitlines()
    assert "memory" in line.lower(), line
    redis.config_set("maxmemory", 0)
    assert worker.poll() is None, "the ingest worker outlived the out-of-memory errors"
    [after] = client.submit(redis, [make_jobspec(command=["true"], sim={"runtime": 0})], timeout=30)
    wait_inactive(redis, [after])


def test_every_long_running_process_outlives_running_out_of_memory_while_busy(own_redis, spawn):
    server, redis = own_redis
    env = {"JOBJOURNAL_REDIS_URL": server.url}
    processes = [spawn("manager", env=env), spawn("lister", env=env), spawn("worker", env=env)]
    wait_for(lambda: redis.exists(keys.manager_lease(), LEGACY.lister_lease()) == 2, what="manager and lister to lead")
    acknowledged = submit(redis, 2000, sim={"runtime": 0.01})  # straight into the inbox: the manager is busy
    redis.config_set("maxmemory-policy", "noeviction")
    redis.config_set("maxmemory", max(1, int(redis.info("memory")["used_memory"]) - 1024 * 1024))
    wait_for(lambda: _refused_for_memory(server), what="Redis to refuse a write for memory")
    redis.config_set("maxmemory", 0)
    assert all(proc.poll() is None for proc in processes), "every process outlived the out-of-memory errors"
    wait_inactive(redis, acknowledged, timeout=120)
    wait_caught_up(redis, timeout=60)
    assert_each_job_lived_once(redis, acknowledged)
    assert_all_records_agree(redis)


def _refused_for_memory(server) -> bool:
    """Whether Redis has refused a command for want of memory since it started (INFO errorstats
    on Redis 7, the rejected-calls counter of 6.2's INFO commandstats otherwise)."""
    from jobjournal.common.connection import connect
    from jobjournal.common.settings import Settings

    client = connect(Settings(redis_url=server.url))
    try:
        stats = client.info("errorstats")
        if stats:
            return any(name.startswith("errorstat_OOM") for name in stats)
        return any(entry.get("rejected_calls", 0) for entry in client.info("commandstats").values())
    finally:
        client.close()
