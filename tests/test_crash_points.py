"""A manager stopped after any round trip of a step leaves no job stuck: the next leader resumes
every state a crash can leave a job in (docs/faults.md lists them).

Deterministic: a fault point (common/faults.py) stops the manager after its k-th post_events.lua
round trip, for k = 1, 2, ... until a run ends before reaching k. With batches of one event, every
pair of neighbouring events of a step (alloc and start, release and free, ...) is split by a stop
in some round; longer batches stop between batches as the manager writes them."""

import threading

import msgspec
import pytest

from jobjournal.common import keys
from jobjournal.common.connection import connect
from jobjournal.common.faults import FaultInjected
from jobjournal.common.layout import create_layout, read_layout
from jobjournal.manager.manager import Manager
from tests.faults.checks import assert_each_job_lived_once, assert_no_core_held_twice
from tests.helpers import assert_journal_matches_eventlogs, is_inactive, names, submit, wait_inactive

pytestmark = pytest.mark.timeout(240)

EVENTS = ("submit", "validate", "depend", "priority", "alloc", "start", "finish", "release", "free", "clean")


def _submit_work(redis) -> list[int]:
    """Six jobs on two cores: some run at once, the others wait for the cores the first free."""
    jobs = submit(redis, 4, sim={"runtime": 0})
    jobs += submit(redis, 2, sim={"runtime": 0}, userid=1001)
    return jobs


def _lead_until_stopped(settings, job_ids) -> bool:
    """Lead in this thread until the fault stops the manager (True) or every job ended first (False)."""
    client = connect(settings)
    stop = threading.Event()
    watcher = threading.Thread(target=_stop_when_inactive, args=(connect(settings), job_ids, stop), daemon=True)
    watcher.start()
    try:
        Manager(client, settings).run(stop)
    except FaultInjected:
        return True
    finally:
        stop.set()
        watcher.join(10)
        client.close()
    return False


def _stop_when_inactive(client, job_ids, stop: threading.Event) -> None:
    while not stop.wait(0.02):
        if all(is_inactive(client, job_id) for job_id in job_ids):
            stop.set()
    client.close()


def _finish_with_a_new_leader(redis, settings, job_ids) -> None:
    redis.delete(keys.manager_lease())  # as if the stopped leader's lease had run out
    stop = threading.Event()
    thread = threading.Thread(target=Manager(connect(settings), settings).run, args=(stop,), daemon=True)
    thread.start()
    try:
        wait_inactive(redis, job_ids, timeout=60)
    finally:
        stop.set()
        thread.join(30)


@pytest.mark.parametrize(("partitions", "batch"), [(1, 1), (3, 1), (3, 4)])
def test_a_manager_stopped_after_any_batch_of_a_step_leaves_no_job_stuck(redis, settings, partitions, batch):
    settings = msgspec.structs.replace(settings, nodes=1, cores_per_node=2, post_batch_events=batch)
    last_events = set()
    stop_at = 1
    while True:
        redis.flushall()
        if partitions > 1:
            create_layout(redis, partitions)
        job_ids = _submit_work(redis)
        faulty = msgspec.structs.replace(settings, fault=f"manager.posted@{stop_at}:raise")
        if not _lead_until_stopped(faulty, job_ids):
            break  # every job ended before the manager reached that round trip: all were tried
        last_events |= {event for job_id in job_ids for event in names(redis, job_id)[-1:]}
        _finish_with_a_new_leader(redis, settings, job_ids)
        assert_each_job_lived_once(redis, job_ids)
        assert_no_core_held_twice(redis, job_ids)
        for part in read_layout(redis).partitions:
            assert_journal_matches_eventlogs(redis, part)
        stop_at += 1
    least = 6 * len(EVENTS) // (batch * partitions)  # a round trip holds one call per partition at most
    assert stop_at > least, f"only {stop_at - 1} round trips for 6 jobs in batches of {batch}"
    if batch == 1:
        assert last_events == set(EVENTS), "a stop came right after each kind of event"
