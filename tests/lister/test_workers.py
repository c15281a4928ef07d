"""Several lister workers: one applies, the others stand by and carry on when it dies;
list output is the same before and after lister and manager restarts."""

import os
import signal
import time

import pytest

from jobjournal.common import keys
from jobjournal.common.keys import LEGACY
from tests.helpers import current_view, naive_view, names, submit, wait_caught_up, wait_for, wait_inactive


def _applier_pid(redis) -> int | None:
    token = redis.get(LEGACY.lister_lease())
    return int(token.decode().split(":")[1]) if token else None


@pytest.mark.timeout(120)  # 500 jobs of 0.5 s on 32 cores: 8 s of simulated work at least
def test_when_the_applying_worker_is_killed_another_carries_on(redis, start_manager, spawn):
    start_manager()
    workers = {proc.pid: proc for proc in (spawn("lister"), spawn("lister"))}
    applier = wait_for(lambda: _applier_pid(redis) in workers and _applier_pid(redis))
    wait_inactive(redis, submit(redis, 50))
    wait_caught_up(redis)
    generation = redis.get(LEGACY.view_current())

    more = submit(redis, 500, sim={"runtime": 0.5})
    time.sleep(0.2)  # when to kill it (while it applies those jobs' events, most likely); nothing is asserted on it
    os.kill(applier, signal.SIGKILL)
    successor = wait_for(lambda: _applier_pid(redis) not in (None, applier) and _applier_pid(redis))
    assert successor in workers
    wait_inactive(redis, more)
    wait_caught_up(redis)
    assert redis.get(LEGACY.view_current()) == generation, "the successor resumed from the cursor"
    assert current_view(redis) == naive_view(redis)


def test_list_output_is_the_same_before_and_after_lister_and_manager_restarts(redis, spawn, cli):
    manager = spawn("manager")
    lister = spawn("lister")
    ids = submit(redis, 20) + submit(redis, 5, sim={"runtime": 0, "exit_code": 1}) + submit(redis, 3, urgency=0)
    wait_inactive(redis, ids[:25])
    wait_caught_up(redis)

    def listing():
        return cli("jobs", "-A", "-a", "-o", "long").output, cli("jobs", "--stats").output

    before = listing()
    assert len(before[0].splitlines()) == 29
    lister.send_signal(signal.SIGTERM)
    lister.wait(30)
    spawn("lister")
    wait_for(lambda: _applier_pid(redis) not in (None, lister.pid))
    wait_caught_up(redis)
    assert listing() == before

    os.kill(manager.pid, signal.SIGKILL)
    manager.wait()
    redis.delete(keys.manager_lease())
    spawn("manager")
    # the new manager restored the held jobs: each has its restart event, and its priority again
    held = ids[25:]
    wait_for(lambda: all(names(redis, j).count("restart") == 1 and names(redis, j)[-1] == "priority" for j in held),
             what="the held jobs to be restored")
    wait_caught_up(redis)
    after = listing()
    # the held jobs went SCHED -> PRIORITY -> SCHED with a restart event: same listing
    assert after == before
