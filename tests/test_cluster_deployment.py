"""jobjournal as deployed on a Redis Cluster: the store on the cluster, rq's queues on a standalone
Redis, every service a process of its own, used through the CLI."""

import os
import subprocess
import sys

import pytest

from jobjournal.common import keys
from jobjournal.common.connection import connect
from jobjournal.common.layout import read_layout
from jobjournal.common.settings import Settings

from .conftest import ROOT
from .helpers import wait_for


def _cli(env: dict, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "jobjournal", *args], env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout)


def test_jobs_run_and_list_with_the_store_on_a_cluster_and_the_queues_on_a_standalone_redis(
    cluster_url, redis, redis_url, spawn, tmp_path
):
    store = connect(Settings(redis_url=cluster_url))
    store.flushall()
    env = {"JOBJOURNAL_REDIS_URL": cluster_url, "JOBJOURNAL_QUEUE_REDIS_URL": redis_url,
           "JOBJOURNAL_PARTITIONS": "16", "JOBJOURNAL_EXEC_BACKEND": "process"}
    spawn("manager", env=env)
    spawn("worker", env=env)
    spawn("executor", env=env)
    spawn("lister", env=env)
    wait_for(lambda: store.exists(keys.manager_lease()), what="the manager to lead")  # else submit says queued
    cli_env = {**os.environ, "JOBJOURNAL_HOME": str(tmp_path), "JOBJOURNAL_REQUEST_TIMEOUT": "30", **env}
    submitted = _cli(cli_env, "submit", "--cc", "5", "--", "echo", "hi")
    assert submitted.returncode == 0, submitted.stderr
    job_ids = submitted.stdout.split()
    assert len(job_ids) == 5
    for job_id in job_ids:
        shown = _cli(cli_env, "job", "--wait-state", "inactive", "--timeout", "50", job_id)
        assert shown.returncode == 0 and "COMPLETED" in shown.stdout, shown.stdout + shown.stderr
        assert _cli(cli_env, "job", "output", job_id).stdout == "hi\n"
    listed = _cli(cli_env, "jobs", "-a")
    assert sorted(line.split()[0] for line in listed.stdout.splitlines()[1:]) == sorted(job_ids)
    assert read_layout(store).size == 16
    assert redis.exists("rq:workers", keys.exec_executors()) == 2, "rq's workers and the executors on the queue Redis"
    assert not store.keys("rq:*") and not store.keys("jj:exec:*"), "and none on the cluster"
    store.close()


def test_redis_start_cluster_starts_a_local_cluster_and_stop_stops_it(tmp_path):
    env = {**os.environ, "JOBJOURNAL_HOME": str(tmp_path)}
    started = _cli(env, "redis", "start", "--cluster", "1")
    try:
        assert started.returncode == 0, started.stderr
        url = started.stdout.strip()
        assert url.startswith("redis+cluster://127.0.0.1:")
        client = connect(Settings(redis_url=url))
        assert client.set("x", 1) and client.get("x") == b"1"
        client.close()
        assert _cli(env, "redis", "start", "--cluster", "1").stdout.strip() == url, "a running one is reused"
    finally:
        stopped = _cli(env, "redis", "stop", "--cluster")
    assert stopped.stdout.strip() == "stopped"


def test_a_store_on_a_cluster_that_is_not_partitioned_is_refused_with_what_to_do(cluster_url):
    from jobjournal.common.layout import LayoutError, store_layout

    store = connect(Settings(redis_url=cluster_url))
    store.flushall()
    try:
        with pytest.raises(LayoutError, match="must be partitioned: set JOBJOURNAL_PARTITIONS"):
            store_layout(store, 1)
        assert store_layout(store, 8).size == 8
    finally:
        store.close()


def test_submitting_to_a_cluster_store_without_a_queue_redis_says_what_to_set(cluster_url, tmp_path):
    env = {**os.environ, "JOBJOURNAL_HOME": str(tmp_path), "JOBJOURNAL_REDIS_URL": cluster_url}
    result = _cli(env, "submit", "--", "true")
    assert result.returncode == 1
    assert "rq cannot run: set JOBJOURNAL_QUEUE_REDIS_URL" in result.stderr
    assert not (tmp_path / "redis.sock").exists(), "no embedded server was started for it"
