"""A manager process that exits at a fault point (os._exit: as abrupt as kill -9) leaves no job
stuck, and no job runs twice: the next leader resumes each one. Real processes: the manager, and
for the process backend an executor running real commands.

The points: after the k-th post_events.lua round trip (`manager.posted`), and after the k-th round
of side effects (`manager.dispatched`: jobs handed to executors). `make test` tries a few k spread
over a run; `make faults` tries more."""

import os
import signal

import pytest

from jobjournal.common import keys
from jobjournal.common.faults import FAULT_EXIT
from jobjournal.common.ids import parse_job_id
from tests.faults.checks import assert_each_job_lived_once, assert_no_core_held_twice
from tests.helpers import assert_journal_matches_eventlogs, submit, wait_for, wait_inactive

pytestmark = pytest.mark.timeout(600)

SMALL_POOL = {"JOBJOURNAL_NODES": "1", "JOBJOURNAL_CORES_PER_NODE": "2", "JOBJOURNAL_POST_BATCH_EVENTS": "1"}
JOBS = 6
ROUND_TRIPS = 50
"""Round trips the manager makes for JOBS jobs with batches of one event, at least (one per event)."""
FLUSHES = 6
"""Flushes (side effects) the manager makes for JOBS jobs, at least."""


def _stops(rounds: int, last: int) -> list[int]:
    """`rounds` passes spread evenly over 1..last."""
    count = min(rounds, last)
    return sorted({1 + (last - 1) * i // max(count - 1, 1) for i in range(count)})


def _stopped_and_resumed(redis, spawn, fault: str, env: dict, job_ids) -> None:
    manager = spawn("manager", env={**env, "JOBJOURNAL_FAULT": fault})
    wait_for(lambda: manager.poll() is not None, timeout=60, what=f"the manager to stop at {fault}")
    assert manager.returncode == FAULT_EXIT, f"the manager exited {manager.returncode} (see {manager.log_path})"
    redis.delete(keys.manager_lease())  # as if its lease had run out
    resumed = spawn("manager", env=env)
    wait_inactive(redis, job_ids, timeout=120)
    os.killpg(resumed.pid, signal.SIGKILL)  # the next round starts from an empty store
    resumed.wait()
    redis.delete(keys.manager_lease())


@pytest.mark.parametrize("point", ["manager.posted", "manager.dispatched"])
def test_a_sim_manager_that_exits_at_a_fault_point_leaves_no_job_stuck(redis, spawn, rounds, point):
    for stop_at in _stops(rounds, ROUND_TRIPS if point == "manager.posted" else FLUSHES):
        redis.flushall()
        job_ids = submit(redis, JOBS, sim={"runtime": 0})
        _stopped_and_resumed(redis, spawn, f"{point}@{stop_at}", SMALL_POOL, job_ids)
        assert_each_job_lived_once(redis, job_ids)
        assert_no_core_held_twice(redis, job_ids)
        assert_journal_matches_eventlogs(redis)


@pytest.mark.parametrize("point", ["manager.posted", "manager.dispatched"])
def test_a_manager_of_real_commands_that_exits_at_a_fault_point_runs_each_job_once(
    redis, spawn, rounds, point, tmp_path
):
    env = {**SMALL_POOL, "JOBJOURNAL_EXEC_BACKEND": "process"}
    spawn("executor")
    wait_for(lambda: redis.hlen(keys.exec_executors()) == 1, what="the executor to register")
    for stop_at in _stops(rounds, ROUND_TRIPS if point == "manager.posted" else FLUSHES):
        for key in redis.scan_iter("jj:*"):
            if not key.startswith(b"jj:exec:"):
                redis.delete(key)  # a fresh store; the executor and its keys stay
        runs = tmp_path / f"runs-{stop_at}"
        job_ids = submit(redis, JOBS, command=["sh", "-c", f'echo "$JOBJOURNAL_JOB_ID" >> {runs}'])
        _stopped_and_resumed(redis, spawn, f"{point}@{stop_at}", env, job_ids)
        assert_each_job_lived_once(redis, job_ids)
        assert_no_core_held_twice(redis, job_ids)
        ran = runs.read_text().split() if runs.exists() else []
        assert sorted(map(parse_job_id, ran)) == sorted(job_ids), f"stopped at {point}@{stop_at}: each ran once"
