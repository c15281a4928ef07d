"""A job's whole life through the manager, on a real Redis (sim backend)."""

import pytest

from jobjournal.common import events as ev
from jobjournal.common.states import State
from tests.helpers import eventlog, names, submit, wait_inactive

FULL_LIFE = ["submit", "validate", "depend", "priority", "alloc", "start", "finish", "release", "free", "clean"]


def test_a_job_goes_through_every_state_to_inactive(redis, start_manager):
    start_manager()
    [job_id] = submit(redis)
    wait_inactive(redis, [job_id])
    assert names(redis, job_id) == FULL_LIFE


def test_event_timestamps_never_go_backwards(redis, start_manager):
    start_manager()
    job_ids = submit(redis, 20, sim={"runtime": 0.01})
    wait_inactive(redis, job_ids)
    for job_id in job_ids:
        stamps = [event.timestamp for event in eventlog(redis, job_id)]
        assert stamps == sorted(stamps)


def test_a_failing_job_finishes_with_its_exit_status(redis, start_manager):
    start_manager()
    [job_id] = submit(redis, sim={"runtime": 0.0, "exit_code": 3})
    wait_inactive(redis, [job_id])
    [finish] = [event for event in eventlog(redis, job_id) if isinstance(event, ev.Finish)]
    assert finish.status == 3 << 8


def test_a_job_beyond_its_time_limit_gets_a_timeout_exception(redis, start_manager):
    start_manager()
    [job_id] = submit(redis, duration=0.2, sim={"runtime": 60})
    wait_inactive(redis, [job_id])
    events = eventlog(redis, job_id)
    [exception] = [event for event in events if isinstance(event, ev.Exception_)]
    assert (exception.type, exception.severity) == ("timeout", 0)
    assert [ev.event_name(e) for e in events][-4:] == ["finish", "release", "free", "clean"]


def test_jobs_wait_for_cores_and_run_in_submit_order(redis, start_manager):
    manager = start_manager(nodes=1, cores_per_node=2)
    job_ids = submit(redis, 4, ntasks=2, sim={"runtime": 0.1})
    wait_inactive(redis, job_ids)
    allocs = [next(e.timestamp for e in eventlog(redis, j) if isinstance(e, ev.Alloc)) for j in job_ids]
    assert allocs == sorted(allocs)
    assert manager.life.pool.free == [[0, 1]]


def test_an_unsatisfiable_job_ends_with_an_alloc_exception(redis, start_manager):
    start_manager(nodes=2, cores_per_node=4)
    [job_id] = submit(redis, ntasks=9)
    wait_inactive(redis, [job_id])
    [exception] = [e for e in eventlog(redis, job_id) if isinstance(e, ev.Exception_)]
    assert exception.type == "alloc" and "unsatisfiable" in exception.note
    assert "alloc" not in names(redis, job_id)


def test_the_manager_keeps_no_inactive_job_in_memory(redis, start_manager):
    manager = start_manager()
    job_ids = submit(redis, 10)
    wait_inactive(redis, job_ids)
    assert all(job_id not in manager.life.jobs for job_id in job_ids)
    assert State.INACTIVE not in {job.state for job in manager.life.jobs.values()}


@pytest.mark.timeout(180)
def test_a_flood_of_jobs_on_a_big_pool_never_costs_the_manager_its_lease(redis, start_manager):
    """20K jobs waiting in the inbox: one step accepts them, one scheduling pass starts them
    and one settle fires their timers; each is checkpointed (lease renewed), so the manager
    keeps leading throughout."""
    job_ids = []
    for _ in range(20):
        job_ids += submit(redis, 1000)
    manager = start_manager(nodes=400, cores_per_node=64)
    term = manager.life
    wait_inactive(redis, job_ids, timeout=150)
    assert manager.life is term, "the manager lost its lease and started a new term"
