"""Under a CPU load of 4 on this 2-core machine (four busy processes besides ours), while a burst of
jobs keeps the leaders busy, the manager and the lister keep their leases (with the default TTL)
and their standbys never act: each lease holds one token from first to last."""

import os
import signal
import subprocess
import sys
import threading

import pytest

from jobjournal.common import keys
from jobjournal.common.keys import LEGACY
from tests.faults.checks import assert_all_records_agree, assert_each_job_lived_once
from tests.helpers import process_log, submit, wait_caught_up, wait_for, wait_inactive

pytestmark = pytest.mark.timeout(300)

LOAD = 4
DEFAULT_TTL = {"JOBJOURNAL_LEASE_TTL": "5"}
"""The shipped lease TTL (common/settings.py), not the tests' 1 s."""
ASSIGNED_ELSEWHERE = "every partition is assigned to the other workers"


class Load:
    """LOAD busy processes, killed on exit."""

    def __enter__(self):
        self.procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(LOAD)]
        return self

    def __exit__(self, *exc):
        for proc in self.procs:
            proc.kill()
            proc.wait()


class LeaseWatch:
    """Samples lease values from a thread: every token each lease had, in order."""

    def __init__(self, redis, names):
        self.redis, self.names = redis, names
        self.seen: dict[str, list[bytes | None]] = {name: [] for name in names}
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self.stop.wait(0.01):
            for name, value in zip(self.names, self.redis.mget(self.names), strict=True):
                if not self.seen[name] or self.seen[name][-1] != value:
                    self.seen[name].append(value)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(10)


def _holder(redis, lease: str, procs):
    token = redis.get(lease)
    return next((proc for proc in procs if token and f":{proc.pid}:".encode() in token), None)


def test_under_a_cpu_load_of_four_the_leaders_keep_their_leases_and_the_standbys_never_act(redis, spawn):
    leader = spawn("manager", env=DEFAULT_TTL)
    wait_for(lambda: redis.exists(keys.manager_lease()), what="the manager to lead")
    standby = spawn("manager", env=DEFAULT_TTL)
    listers = [spawn("lister", env=DEFAULT_TTL) for _ in range(2)]
    # the listers divide the partitions (one here): the one it is assigned to applies, the other stands by
    # (until both have seen each other, the first may hold a partition that is the second's: wait for that)
    wait_for(lambda: any(ASSIGNED_ELSEWHERE in process_log(proc) for proc in listers), what="the assignment to settle")
    lister = next(proc for proc in listers if ASSIGNED_ELSEWHERE not in process_log(proc))
    wait_for(lambda: _holder(redis, LEGACY.lister_lease(), listers) is lister, what="the assigned lister to apply")
    wait_for(lambda: "standing by" in process_log(standby), what="the manager standby to stand by")
    standbys = [standby, *(proc for proc in listers if proc is not lister)]
    marks = {proc.pid: len(process_log(proc)) for proc in standbys}
    with Load(), LeaseWatch(redis, [keys.manager_lease(), LEGACY.lister_lease()]) as watch:
        job_ids = [job for _ in range(20) for job in submit(redis, 1000, sim={"runtime": 0.01})]
        wait_inactive(redis, job_ids, timeout=240)
        wait_caught_up(redis, timeout=120)
    for name, tokens in watch.seen.items():
        assert len(tokens) == 1 and tokens[0] is not None, f"{name} changed hands under load: {tokens}"
    assert f":{leader.pid}:" in redis.get(keys.manager_lease()).decode()
    assert f":{lister.pid}:" in redis.get(LEGACY.lister_lease()).decode()
    for proc in standbys:
        since = process_log(proc)[marks[proc.pid]:]
        assert "leading" not in since and "applying" not in since and "resumed" not in since, f"{proc.pid} acted"
        os.kill(proc.pid, signal.SIGKILL)
    assert_each_job_lived_once(redis, job_ids[::50])
    assert_all_records_agree(redis)
