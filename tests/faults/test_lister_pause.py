"""A lister worker stopped (SIGSTOP) past its lease in the middle of a rebuild, then resumed, writes
nothing after it lost the lease: no orphaned job documents, no stale build marker, and the view the
next holder built equals one rebuilt from scratch. With and without rebuild helpers (they go on
while their worker is stopped, and are fenced off with it)."""

import os
import re
import signal

import pytest

from jobjournal.common.keys import LEGACY
from tests.faults.checks import assert_all_records_agree
from tests.helpers import process_log, submit, wait_caught_up, wait_for, wait_inactive

pytestmark = pytest.mark.timeout(300)

GENERATION = re.compile(rb"^jj:view:\{g(\d+)\}:")


def _stopped(pid: int) -> bool:
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().rpartition(")")[2].split()[0] == "T"


def _generations_in_keyspace(redis) -> set[int]:
    return {int(GENERATION.match(key).group(1)) for key in redis.scan_iter(match="jj:view:{g*}:*", count=1000)}


@pytest.mark.parametrize("helpers", [0, 1])
def test_a_lister_stopped_mid_rebuild_past_its_lease_writes_nothing_when_it_resumes(
    redis, start_manager, spawn, helpers
):
    start_manager()
    job_ids = [job for _ in range(6) for job in submit(redis, 500, sim={"runtime": 0})]
    wait_inactive(redis, job_ids, timeout=120)
    env = {"JOBJOURNAL_REBUILD_PROCESSES": str(helpers + 1), "JOBJOURNAL_REBUILD_SPLIT_FROM": "0"}
    paused = spawn("lister", env={**env, "JOBJOURNAL_FAULT": "lister.rebuilding@3:stop"})
    wait_for(lambda: _stopped(paused.pid), timeout=60, what="the lister to stop itself mid-rebuild")
    building = int(redis.hget(LEGACY.view_building(), "generation"))
    wait_for(lambda: redis.get(LEGACY.lister_lease()) is None, what="its lease to run out")

    spawn("lister", env=env)  # takes the lease, drops the abandoned build, builds its own
    wait_for(lambda: redis.exists(LEGACY.view_current()) and not redis.exists(LEGACY.view_building()),
             timeout=120, what="the new holder's view")
    wait_caught_up(redis, timeout=60)
    os.kill(paused.pid, signal.SIGCONT)
    wait_for(lambda: "standing by" in process_log(paused) or paused.poll() is not None,
             timeout=60, what="the resumed lister to find its lease lost")

    assert paused.poll() is None, "the resumed lister goes on, standing by or applying"
    current = int(redis.get(LEGACY.view_current()))
    assert current != building
    wait_for(lambda: not redis.exists(LEGACY.view_building()), what="no build marker left")
    assert _generations_in_keyspace(redis) == {int(redis.get(LEGACY.view_current()))}, "no orphaned generation"
    assert_all_records_agree(redis)
