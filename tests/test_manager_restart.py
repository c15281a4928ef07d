"""A restarted manager rebuilds from Redis alone; a standby takes over when the leader dies."""

import os
import signal

from jobjournal.common import events as ev
from jobjournal.common import keys
from tests.helpers import (
    SettableClock,
    assert_journal_matches_eventlogs,
    eventlog,
    names,
    recording,
    submit,
    wait_for,
    wait_inactive,
)

ONE_CORE = {"JOBJOURNAL_NODES": "1", "JOBJOURNAL_CORES_PER_NODE": "1"}


def _leader_pid(redis) -> int | None:
    token = redis.get(keys.manager_lease())
    return int(token.decode().split(":")[1]) if token else None


def _wait_leader(redis, proc) -> None:
    wait_for(lambda: _leader_pid(redis) == proc.pid, what=f"manager {proc.pid} to lead")


def test_a_killed_manager_restarts_from_redis_and_every_job_completes(redis, spawn, start_manager):
    first = spawn("manager", env=ONE_CORE)
    _wait_leader(redis, first)
    [running] = submit(redis, sim={"runtime": 100})
    waiting = submit(redis, 2)  # no runtime: they end as soon as they have the core
    wait_for(lambda: "start" in names(redis, running) and "priority" in names(redis, waiting[-1]))
    os.kill(first.pid, signal.SIGKILL)
    first.wait()
    redis.delete(keys.manager_lease())  # do not wait out the dead leader's lease
    started = next(e for e in eventlog(redis, running) if isinstance(e, ev.Start)).timestamp
    # the next manager (in a thread, with a clock of the test's) comes 99 s into the job's 100
    clock = SettableClock(started + 99)
    start_manager(clock=clock, nodes=1, cores_per_node=1)  # returns once restored and settled
    assert "finish" not in names(redis, running), "the sim job carried on from its start: 1 s to go"
    clock.now = started + 100  # the job's end, exactly as the manager reckons it
    wait_inactive(redis, [running, *waiting])

    finish = next(e for e in eventlog(redis, running) if isinstance(e, ev.Finish))
    assert finish.timestamp == started + 100
    assert "restart" not in names(redis, running)
    for job_id in waiting:
        log = names(redis, job_id)
        assert log[log.index("restart") - 1] == "priority" and log[log.index("restart") + 1] == "priority"
        assert log[-1] == "clean"
    assert_journal_matches_eventlogs(redis)


def _leader_and_standby(redis, spawn):
    """Two managers: the first leads, the second (started after it) has tried for the lease
    (its SET NX, with its pid in the token, was refused) and waits."""
    one = spawn("manager")
    _wait_leader(redis, one)
    with recording(redis) as commands:
        two = spawn("manager")
        tries = f"SET {keys.manager_lease()} "
        wait_for(lambda: any(c.startswith(tries) and f":{two.pid}:" in c for c in list(commands)),
                 what="the standby to try for the lease")
    return one, two


def test_a_standby_manager_takes_over_when_the_leader_dies(redis, spawn):
    one, two = _leader_and_standby(redis, spawn)
    assert _leader_pid(redis) == one.pid, "the standby must wait"
    before = submit(redis, 5)
    wait_inactive(redis, before)
    os.kill(one.pid, signal.SIGKILL)
    _wait_leader(redis, two)  # once the dead leader's lease runs out (1 s)
    after = submit(redis, 5)
    wait_inactive(redis, after)
    assert_journal_matches_eventlogs(redis)


def test_a_stopped_manager_hands_over_at_once(redis, spawn):
    one, two = _leader_and_standby(redis, spawn)
    one.send_signal(signal.SIGTERM)
    assert one.wait(30) == 0
    _wait_leader(redis, two)
    wait_inactive(redis, submit(redis, 2))


def test_submissions_sent_while_no_manager_runs_are_taken_on_restart(redis, spawn):
    job_ids = submit(redis, 10)
    manager = spawn("manager")
    _wait_leader(redis, manager)
    wait_inactive(redis, job_ids)
    assert all(names(redis, job_id).count("submit") == 1 for job_id in job_ids)


def test_standby_managers_and_listers_say_that_they_stand_by_and_for_whom(redis, spawn):
    from pathlib import Path

    leader = spawn("manager")
    _wait_leader(redis, leader)
    standby = spawn("manager")
    holder = redis.get(keys.manager_lease()).decode()
    wait_for(lambda: f"standing by: {keys.manager_lease()} is held by {holder}" in Path(standby.log_path).read_text(),
             what="the standby manager to say whom it waits for")
    first = spawn("lister")
    wait_for(lambda: "applying the view" in Path(first.log_path).read_text(), what="the first lister to apply")
    second = spawn("lister")

    def says_it_stands_by() -> bool:
        text = Path(second.log_path).read_text()
        return "standing by: every partition is assigned to the other workers" in text or (
            "standing by for partition 0" in text and " is held by " in text)

    wait_for(says_it_stands_by, what="the second lister to say it stands by, and for whom")
