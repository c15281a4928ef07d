"""Cancel, urgency, exceptions and purge: requests to the manager and their errors."""

import pytest

from jobjournal.common import events as ev
from jobjournal.common import full_journal as fj
from jobjournal.common import keys
from jobjournal.common import reply_format as rf
from jobjournal.common.errors import Queued
from jobjournal.common.keys import LEGACY
from jobjournal.common.states import PRIORITY_MAX
from jobjournal.manager import client
from tests.helpers import SettableClock, eventlog, journal_entries, names, submit, wait_for, wait_inactive

OWNER = 1000


def _exception(redis, job_id):
    return next(e for e in eventlog(redis, job_id) if isinstance(e, ev.Exception_))


def test_canceling_a_pending_job_ends_it_without_an_allocation(redis, start_manager):
    start_manager(nodes=1, cores_per_node=1)
    blocker, waiting = submit(redis, 2, sim={"runtime": 30})
    wait_for(lambda: "alloc" in names(redis, blocker), what="the first job to run")
    assert client.cancel(redis, [waiting], note="changed my mind", userid=OWNER) == {}
    wait_inactive(redis, [waiting])
    exception = _exception(redis, waiting)
    assert (exception.type, exception.severity, exception.note) == ("cancel", 0, "changed my mind")
    assert "alloc" not in names(redis, waiting)
    assert names(redis, waiting)[-1] == "clean"


def test_canceling_a_running_job_kills_it_and_frees_its_cores(redis, start_manager):
    manager = start_manager(nodes=1, cores_per_node=1)
    [job_id] = submit(redis, sim={"runtime": 30})
    wait_for(lambda: "start" in names(redis, job_id), what="the job to start")
    client.cancel(redis, [job_id], userid=OWNER)
    wait_inactive(redis, [job_id])
    assert names(redis, job_id)[-5:] == ["exception", "finish", "release", "free", "clean"]
    assert manager.life.pool.free == [[0]]


def test_canceling_unknown_inactive_or_others_jobs_says_why_and_changes_nothing(redis, start_manager):
    start_manager()
    [done] = submit(redis)
    [running] = submit(redis, sim={"runtime": 30})
    wait_inactive(redis, [done])
    wait_for(lambda: "start" in names(redis, running))
    before = redis.xlen(LEGACY.journal())
    errors = client.cancel(redis, [done, 12345, running], userid=OWNER + 1)
    assert errors == {
        done: "job is inactive",
        12345: "no such job",
        running: "permission denied: not the job's owner",
    }
    assert redis.xlen(LEGACY.journal()) == before


def test_urgency_zero_holds_a_job_and_raising_it_releases_the_job(redis, start_manager):
    start_manager()
    [job_id] = submit(redis, urgency=0)
    wait_for(lambda: "priority" in names(redis, job_id))
    # the manager had its chance: a job submitted after it got the cores and finished
    wait_inactive(redis, submit(redis))
    assert "alloc" not in names(redis, job_id)
    [priority] = [e for e in eventlog(redis, job_id) if isinstance(e, ev.Priority)]
    assert priority.priority == 0
    assert client.set_urgency(redis, job_id, 16, userid=OWNER) == {}
    wait_inactive(redis, [job_id])
    assert [type(e).__name__ for e in eventlog(redis, job_id)][3:7] == ["Priority", "Urgency", "Priority", "Alloc"]


def test_an_expedited_job_runs_before_older_jobs(redis, start_manager):
    start_manager(nodes=1, cores_per_node=1)
    [blocker] = submit(redis, sim={"runtime": 60})
    queued = submit(redis, 3, sim={"runtime": 0.05})
    [urgent] = submit(redis, urgency=31, sim={"runtime": 0.05})
    wait_for(lambda: all("priority" in names(redis, job_id) for job_id in [*queued, urgent]), what="all to wait")
    client.cancel(redis, [blocker], userid=OWNER)  # the core is free only once every job waits for it
    wait_inactive(redis, [blocker, *queued, urgent])
    [priority] = [e for e in eventlog(redis, urgent) if isinstance(e, ev.Priority)]
    assert priority.priority == PRIORITY_MAX

    def alloc_time(job_id):
        return next(e.timestamp for e in eventlog(redis, job_id) if isinstance(e, ev.Alloc))

    assert alloc_time(urgent) < min(alloc_time(job_id) for job_id in queued)


def test_urgency_of_a_running_job_is_refused(redis, start_manager):
    start_manager()
    [job_id] = submit(redis, sim={"runtime": 30})
    wait_for(lambda: "start" in names(redis, job_id))
    assert client.set_urgency(redis, job_id, 20, userid=OWNER) == {job_id: "job is not pending (state RUN)"}


def test_a_non_fatal_exception_is_recorded_and_the_job_goes_on(redis, start_manager):
    clock = SettableClock()  # stands still: the job runs until the test moves it on
    start_manager(clock=clock)
    [job_id] = submit(redis, sim={"runtime": 0.3})
    wait_for(lambda: "start" in names(redis, job_id))
    assert client.raise_exception(redis, [job_id], "warning", severity=3, note="disk slow", userid=OWNER) == {}
    wait_for(lambda: "exception" in names(redis, job_id))
    assert "finish" not in names(redis, job_id)
    clock.advance(1)  # past the job's end
    wait_inactive(redis, [job_id])
    exception = _exception(redis, job_id)
    assert (exception.type, exception.severity, exception.note) == ("warning", 3, "disk slow")
    finish = next(e for e in eventlog(redis, job_id) if isinstance(e, ev.Finish))
    assert finish.status == 0


def test_a_request_with_no_manager_running_says_at_once_that_it_is_queued(redis):
    with pytest.raises(Queued, match="no manager is running: the request waits in the inbox"):
        client.cancel(redis, [1], timeout=3600)  # waiting for it would outlive the test's own timeout
    assert redis.xlen(keys.manager_inbox()) == 1, "the request is queued"


def test_purging_by_id_removes_every_key_and_tells_the_journal(redis, start_manager):
    start_manager()
    done = submit(redis, 3)
    [running] = submit(redis, sim={"runtime": 30})
    wait_inactive(redis, done)
    wait_for(lambda: "start" in names(redis, running))
    errors, data = client.purge(redis, [done[0], running, 4242])  # without force: only counted
    assert errors == {running: "cannot purge active job", 4242: "no such job"}
    assert data == {"purged": 0, "would_purge": 1, "inactive": 3} and redis.exists(LEGACY.job_eventlog(done[0]))
    errors, data = client.purge(redis, [done[0], running, 4242], force=True)
    assert errors == {running: "cannot purge active job", 4242: "no such job"}
    assert data == {"purged": 1, "would_purge": 1, "inactive": 2}
    assert not redis.exists(LEGACY.job_eventlog(done[0]), LEGACY.job_environment(done[0]))
    assert redis.zscore(LEGACY.inactive_jobs(), done[0]) is None
    purges = [e for e in journal_entries(redis) if e.is_purge]
    assert [e.job_id for e in purges] == [done[0]]
    assert redis.exists(LEGACY.job_eventlog(done[1]))


def test_purging_by_limits_needs_force_and_removes_the_oldest_first(redis, start_manager):
    start_manager()
    job_ids = []
    for _ in range(5):
        job_ids += submit(redis)
        wait_inactive(redis, job_ids)
    errors, data = client.purge(redis, num_limit=2)
    assert (errors, data) == ({}, {"purged": 0, "would_purge": 3, "inactive": 5})
    assert redis.zcard(LEGACY.inactive_jobs()) == 5
    errors, data = client.purge(redis, num_limit=2, force=True)
    assert data["purged"] == 3
    assert [int(j) for j in redis.zrange(LEGACY.inactive_jobs(), 0, -1)] == job_ids[3:]


def test_the_manager_purges_by_itself_beyond_the_configured_count(redis, start_manager):
    start_manager(purge_num_limit=3)
    job_ids = submit(redis, 10)
    wait_for(lambda: redis.zcard(LEGACY.inactive_jobs()) == 3 and redis.scard(LEGACY.active_jobs()) == 0)
    assert sum(1 for e in journal_entries(redis) if e.is_purge) == 7
    assert sum(bool(redis.exists(LEGACY.job_eventlog(j))) for j in job_ids) == 3


def test_a_full_journal_never_shows_a_purged_job(redis, start_manager):
    start_manager()
    job_ids = submit(redis, 4)
    wait_inactive(redis, job_ids)
    client.purge(redis, job_ids[:2], force=True)
    for item in fj.follow_full_journal(redis, block_ms=50):
        if isinstance(item, rf.Sentinel):
            assert item.jobs == 2
            break
        if isinstance(item, rf.BacklogJob):
            assert item.job_id in job_ids[2:]
