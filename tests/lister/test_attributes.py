"""Each derived attribute (RFC 21) for completed, failed, canceled, timed-out and held jobs."""

import pytest

from jobjournal.lister import query as q
from jobjournal.manager import client
from tests.helpers import names, submit, wait_caught_up, wait_for, wait_inactive

OWNER = 1000


@pytest.fixture
def system(redis, start_manager, start_lister):
    start_manager(nodes=2, cores_per_node=4)
    start_lister()
    return redis


def _job(redis, job_id):
    wait_caught_up(redis)
    return q.list_id(redis, job_id)


def test_a_completed_job_has_every_attribute(system):
    redis = system
    [job_id] = submit(
        redis, command=["/bin/simulate", "-x"], ntasks=3, cores_per_task=2, duration=60, cwd="/tmp/w",
        queue="batch", name="sim", urgency=20, sim={"runtime": 0.05},
    )
    wait_inactive(redis, [job_id])
    job = _job(redis, job_id)
    assert job["state"] == "INACTIVE" and job["result"] == "COMPLETED" and job["success"] is True
    assert (job["userid"], job["urgency"], job["priority"]) == (OWNER, 20, 20)
    spec = (job["name"], job["queue"], job["cwd"], job["ntasks"], job["duration"])
    assert spec == ("sim", "batch", "/tmp/w", 3, 60.0)
    assert (job["nnodes"], job["ncores"], job["ranks"], job["nodelist"]) == (2, 6, "0-1", "node[0-1]")
    assert job["expiration"] == pytest.approx(job["t_run"] + 60)
    assert job["waitstatus"] == 0 and job["exception_occurred"] is False and job["exception_type"] is None
    assert job["t_submit"] <= job["t_depend"] <= job["t_run"] <= job["t_cleanup"] <= job["t_inactive"]
    assert job["t_cleanup"] - job["t_run"] >= 0.05


def test_a_failed_job_has_its_wait_status_and_no_success(system):
    redis = system
    [job_id] = submit(redis, sim={"runtime": 0, "exit_code": 7})
    wait_inactive(redis, [job_id])
    job = _job(redis, job_id)
    assert (job["result"], job["success"], job["waitstatus"]) == ("FAILED", False, 7 << 8)


def test_a_job_canceled_while_pending_never_ran(system, start_manager):
    redis = system
    [held] = submit(redis, urgency=0)
    wait_for(lambda: "priority" in names(redis, held))
    client.cancel(redis, [held], note="no longer needed", userid=OWNER)
    wait_inactive(redis, [held])
    job = _job(redis, held)
    assert (job["result"], job["success"]) == ("CANCELED", False)
    exception = (job["exception_type"], job["exception_severity"], job["exception_note"])
    assert exception == ("cancel", 0, "no longer needed")
    assert job["t_run"] is None and job["ranks"] is None and job["waitstatus"] is None
    assert job["t_cleanup"] <= job["t_inactive"]
    assert job["nnodes"] is None and job["ncores"] == 1


def test_a_job_canceled_while_running_keeps_its_allocation_and_kill_status(system):
    redis = system
    [job_id] = submit(redis, sim={"runtime": 30})
    wait_for(lambda: "start" in names(redis, job_id))
    client.cancel(redis, [job_id], userid=OWNER)
    wait_inactive(redis, [job_id])
    job = _job(redis, job_id)
    assert (job["result"], job["exception_type"], job["waitstatus"]) == ("CANCELED", "cancel", 9)
    assert job["t_run"] is not None and job["nodelist"] == "node0"


def test_a_timed_out_job_is_a_timeout(system):
    redis = system
    [job_id] = submit(redis, duration=0.1, sim={"runtime": 10})
    wait_inactive(redis, [job_id])
    job = _job(redis, job_id)
    assert (job["result"], job["success"], job["exception_type"]) == ("TIMEOUT", False, "timeout")
    assert job["expiration"] == pytest.approx(job["t_run"] + 0.1)


def test_a_held_job_is_pending_with_priority_zero_and_runs_when_released(system):
    redis = system
    [job_id] = submit(redis, urgency=0)
    wait_for(lambda: "priority" in names(redis, job_id))
    job = _job(redis, job_id)
    assert (job["state"], job["urgency"], job["priority"], job["result"]) == ("SCHED", 0, 0, None)
    client.set_urgency(redis, job_id, 31, userid=OWNER)
    wait_inactive(redis, [job_id])
    job = _job(redis, job_id)
    assert (job["urgency"], job["priority"], job["result"]) == (31, 4294967295, "COMPLETED")


def test_a_non_fatal_exception_is_shown_until_a_fatal_one_replaces_it(system):
    redis = system
    [job_id] = submit(redis, sim={"runtime": 30})
    wait_for(lambda: "start" in names(redis, job_id))
    client.raise_exception(redis, [job_id], "warning", severity=4, note="slow disk", userid=OWNER)
    wait_for(lambda: "exception" in names(redis, job_id))
    wait_caught_up(redis)
    assert q.list_id(redis, job_id)["exception_type"] == "warning"
    client.raise_exception(redis, [job_id], "node-failure", severity=0, note="rack 3", userid=OWNER)
    wait_inactive(redis, [job_id])
    job = _job(redis, job_id)
    assert (job["exception_type"], job["exception_severity"], job["result"]) == ("node-failure", 0, "FAILED")
