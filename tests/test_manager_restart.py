"""A restarted manager rebuilds from Redis alone; a standby takes over when the leader dies."""

import os
import signal
import time

from jobjournal.common import events as ev
from jobjournal.common import keys

from tests.helpers import (
    assert_journal_matches_eventlogs,
    eventlog,
    names,
    submit,
    wait_for,
    wait_inactive,
)

ONE_CORE = {"JOBJOURNAL_NODES": "1", "JOBJOURNAL_CORES_PER_NODE": "1"}


def _leader_pid(redis) -> int | None:
    token = redis.get(keys.manager_lease())
    return int(token.decode().split(":")[1]) if token else None


def _wait_leader(redis, proc) -> None:
    wait_for(lambda: _leader_pid(redis) == proc.pid, timeout=15, what=f"manager {proc.pid} to lead")


def test_a_killed_manager_restarts_from_redis_and_every_job_completes(redis, spawn):
    first = spawn("manager", env=ONE_CORE)
    _wait_leader(redis, first)
    running, *waiting = submit(redis, 3, sim={"runtime": 1.5})
    wait_for(lambda: "start" in names(redis, running) and "priority" in names(redis, waiting[-1]))
    os.kill(first.pid, signal.SIGKILL)
    first.wait()
    redis.delete(keys.manager_lease())  # do not wait out the dead leader's lease
    second = spawn("manager", env=ONE_CORE)
    _wait_leader(redis, second)
    wait_inactive(redis, [running, *waiting], timeout=15)

    events = eventlog(redis, running)
    start = next(e for e in events if isinstance(e, ev.Start))
    finish = next(e for e in events if isinstance(e, ev.Finish))
    assert 1.5 <= finish.timestamp - start.timestamp < 3.0, "the sim job carried on from its start"
    assert "restart" not in names(redis, running)
    for job_id in waiting:
        log = names(redis, job_id)
        assert log[log.index("restart") - 1] == "priority" and log[log.index("restart") + 1] == "priority"
        assert log[-1] == "clean"
    assert_journal_matches_eventlogs(redis)


def _leader_and_standby(redis, spawn, settle: float):
    """Two managers: the first leads, the second (started after it) waits."""
    one = spawn("manager")
    _wait_leader(redis, one)
    two = spawn("manager")
    time.sleep(settle)
    return one, two


def test_a_standby_manager_takes_over_when_the_leader_dies(redis, spawn):
    one, two = _leader_and_standby(redis, spawn, settle=0.5)
    assert _leader_pid(redis) == one.pid, "the standby must wait"
    before = submit(redis, 5)
    wait_inactive(redis, before)
    os.kill(one.pid, signal.SIGKILL)
    started = time.monotonic()
    _wait_leader(redis, two)
    assert time.monotonic() - started < 5
    after = submit(redis, 5)
    wait_inactive(redis, after)
    assert_journal_matches_eventlogs(redis)


def test_a_stopped_manager_hands_over_at_once(redis, spawn):
    one, two = _leader_and_standby(redis, spawn, settle=0.3)
    one.send_signal(signal.SIGTERM)
    assert one.wait(10) == 0
    _wait_leader(redis, two)
    wait_inactive(redis, submit(redis, 2))


def test_submissions_sent_while_no_manager_runs_are_taken_on_restart(redis, spawn):
    job_ids = submit(redis, 10)
    manager = spawn("manager")
    _wait_leader(redis, manager)
    wait_inactive(redis, job_ids)
    assert all(names(redis, job_id).count("submit") == 1 for job_id in job_ids)
