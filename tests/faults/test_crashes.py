"""Kill the manager, a lister worker, or an rq worker at random moments under load; every
acknowledged submission still runs exactly once and every record agrees (invariants 1-3, 6)."""

import os
import random
import signal
import threading
import time

import pytest

from jobjournal.common import keys
from jobjournal.common.connection import connect
from jobjournal.common.keys import LEGACY
from jobjournal.common.layout import create_layout
from jobjournal.common.settings import Settings
from jobjournal.lister.view import delete_generation
from tests.faults.checks import assert_all_records_agree, assert_each_job_lived_once, assert_no_core_held_twice
from tests.helpers import (
    assert_journal_matches_eventlogs,
    current_view,
    naive_view,
    submit,
    wait_caught_up,
    wait_for,
    wait_inactive,
)

pytestmark = pytest.mark.timeout(300)


class Burst:
    """Submits jobs in small requests from a thread; remembers only acknowledged ids."""

    def __init__(self, redis, total: int):
        self.redis, self.total = redis, total
        self.acknowledged: list[int] = []
        self.thread = threading.Thread(target=self._run)

    def _run(self):
        rng = random.Random(11)
        while len(self.acknowledged) < self.total:
            runtime = rng.choice([0, 0, 0.01, 0.05])
            self.acknowledged += submit(self.redis, 25, sim={"runtime": runtime}, userid=1000 + rng.randrange(3))
            time.sleep(0.002)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.thread.join()


def _kill(proc) -> None:
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def _kill_the_manager_during_a_burst(redis, spawn, rounds: int, total: int, seed: int, env=None) -> Burst:
    """Submit `total` jobs while the manager is killed `rounds` times at random moments (and started
    again each time); the burst, with the acknowledged ids."""
    manager = spawn("manager", env=env)
    rng = random.Random(seed)
    with Burst(redis, total) as burst:
        for _ in range(rounds):
            time.sleep(rng.uniform(0.05, 0.4))
            _kill(manager)
            redis.delete(keys.manager_lease())  # as if its lease had run out
            manager = spawn("manager", env=env)
    return burst


def test_a_manager_killed_again_and_again_loses_and_repeats_nothing(redis, spawn, rounds):
    spawn("lister")
    burst = _kill_the_manager_during_a_burst(redis, spawn, rounds, total=3000, seed=5)
    wait_inactive(redis, burst.acknowledged, timeout=120)
    wait_caught_up(redis, timeout=60)
    assert_each_job_lived_once(redis, burst.acknowledged)
    assert_no_core_held_twice(redis, burst.acknowledged)
    assert_all_records_agree(redis)


def test_a_manager_killed_again_and_again_on_a_partitioned_cluster_store_loses_and_repeats_nothing(
    cluster_url, redis_url, spawn, rounds
):
    """P = 16 on a 3-master cluster, 3 lister workers, 8 cores for jobs that free and reuse them all
    the time: each kill may fall between two partitions' writes of a step."""
    redis = connect(Settings(redis_url=cluster_url))
    try:
        redis.flushall()
        layout = create_layout(redis, 16)
        env = {"JOBJOURNAL_REDIS_URL": cluster_url, "JOBJOURNAL_QUEUE_REDIS_URL": redis_url,
               "JOBJOURNAL_PARTITIONS": "16", "JOBJOURNAL_NODES": "2", "JOBJOURNAL_CORES_PER_NODE": "4"}
        for _ in range(3):
            spawn("lister", env=env)
        burst = _kill_the_manager_during_a_burst(redis, spawn, rounds, total=2000, seed=7, env=env)
        wait_inactive(redis, burst.acknowledged, timeout=120)
        wait_caught_up(redis, timeout=60)
        assert_each_job_lived_once(redis, burst.acknowledged)
        assert_no_core_held_twice(redis, burst.acknowledged)
        for part in layout.partitions:
            assert_journal_matches_eventlogs(redis, part)
            assert current_view(redis, part) == naive_view(redis, part), f"partition {part.index}"
    finally:
        redis.close()


def test_a_lister_killed_while_applying_and_while_rebuilding_leaves_a_correct_view(redis, spawn, rounds):
    spawn("manager")
    lister = spawn("lister")
    rng = random.Random(6)
    with Burst(redis, 3000) as burst:
        for round_ in range(rounds):
            time.sleep(rng.uniform(0.05, 0.3))
            _kill(lister)
            redis.delete(LEGACY.lister_lease())
            if round_ % 2:  # next start has no view: it is killed while rebuilding
                current = redis.get(LEGACY.view_current())
                redis.delete(LEGACY.view_current())
                if current:
                    delete_generation(redis, LEGACY, int(current))
            lister = spawn("lister")
    wait_inactive(redis, burst.acknowledged, timeout=120)
    time.sleep(rng.uniform(0, 0.1))
    _kill(lister)  # once more, mid-rebuild or mid-apply
    redis.delete(LEGACY.lister_lease())
    spawn("lister")
    wait_caught_up(redis, timeout=60)
    assert_each_job_lived_once(redis, burst.acknowledged)
    assert_all_records_agree(redis)


def test_an_executor_killed_mid_job_ends_the_job_with_an_exception(redis, start_manager, spawn, tmp_path):
    start_manager(exec_backend="process")
    for round_ in range(2):
        executor = spawn("executor")
        pidfile = tmp_path / f"pid-{round_}"
        [job_id] = submit(redis, command=["sh", "-c", f"echo $$ > {pidfile}; exec sleep 60"])
        wait_for(lambda pidfile=pidfile: pidfile.exists() and pidfile.read_text())
        _kill(executor)  # its command dies with it
        wait_inactive(redis, [job_id])
        assert_each_job_lived_once(redis, [job_id])
