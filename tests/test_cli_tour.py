"""A Flux user's session through the real `jobjournal` command (a process per call, exit codes and
output), with a manager and a lister running as processes on the test Redis."""

import json
import os
import subprocess
import sys

from jobjournal.common import keys
from jobjournal.common.ids import f58, parse_job_id
from tests.conftest import ROOT
from tests.helpers import wait_caught_up, wait_for, wait_inactive


def test_a_flux_user_s_session(redis, redis_url, spawn, tmp_path):
    env = {**os.environ, "JOBJOURNAL_REDIS_URL": redis_url, "JOBJOURNAL_HOME": str(tmp_path),
           "JOBJOURNAL_NODES": "1", "JOBJOURNAL_CORES_PER_NODE": "2"}

    def jj(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "jobjournal", *args], env=env, cwd=ROOT, capture_output=True,
                              text=True, timeout=120)

    spawn("manager", env={"JOBJOURNAL_NODES": "1", "JOBJOURNAL_CORES_PER_NODE": "2"})
    spawn("worker", "--queue", "ingest")
    spawn("lister")
    wait_for(lambda: redis.exists(keys.manager_lease()), what="the manager to lead")
    ran = jj("submit", "--sim-runtime", "0", "--", "/usr/bin/")  # a path ending in '/': named by all of it
    busy = jj("submit", "-c", "2", "--sim-runtime", "600", "--", "busy")
    waiting = jj("submit", "--", "waits")
    assert (ran.returncode, busy.returncode, waiting.returncode) == (0, 0, 0), ran.stderr + busy.stderr
    done_id, busy_id, wait_id = ran.stdout.strip(), busy.stdout.strip(), waiting.stdout.strip()
    wait_inactive(redis, [parse_job_id(done_id)])
    wait_caught_up(redis)

    assert jj("urgency", wait_id, "hold").returncode == 0
    since = jj("jobs", "--since", "-1h", "-o", "{id.f58} {name} {state}", "-n")
    assert since.returncode == 0
    assert since.stdout.split("\n")[:3] == [
        f"{wait_id} waits SCHED", f"{busy_id} busy RUN", f"{done_id} /usr/bin/ INACTIVE"]
    document = json.loads(jj("jobs", "-a", "--json-document").stdout)
    assert [row["id"] for row in document["jobs"]][-1] == parse_job_id(done_id)
    assert "Exit 0" in jj("jobs", "-a", "-o", "endreason").stdout
    assert jj("jobs", "-o", "lng").returncode == 2
    hosts = jj("jobs", "-a", "--constraint", '{"hostlist": ["node0"]}', "-o", "{id.f58}", "-n")
    assert hosts.stdout.split() == [busy_id, done_id]
    purge = jj("purge", done_id)
    assert purge.returncode == 0 and purge.stdout.strip() == "use --force to purge 1 of 1 inactive jobs"
    dry = jj("cancel", "--all", "--dry-run")
    assert dry.stdout.strip() == "would cancel 2 jobs"
    shown = jj("job", busy_id)
    assert shown.returncode == 0 and "command              busy" in shown.stdout
    assert "manager   " in jj("status").stdout
    resources = jj("resources").stdout.splitlines()
    assert resources[2].split() == ["allocated", "1", "2", "node0"]
    assert "endreason" in jj("jobs", "-o", "help").stdout
    assert jj("urgency", wait_id, "expedite").returncode == 0
    canceled = jj("cancel", "--all")
    assert canceled.returncode == 0 and canceled.stdout.strip() == "canceled 2 jobs"
    wait_inactive(redis, [parse_job_id(busy_id), parse_job_id(wait_id)])
    purged = jj("purge", "--force", done_id)
    assert purged.stdout.strip() == "purged 1 inactive jobs, 2 remaining"
    missing = jj("job", f58(12345))
    assert missing.returncode == 1 and missing.stderr.strip() == f"Error: no such job: {f58(12345)}"
    assert jj("--version").stdout.startswith("jobjournal, version")


def test_a_view_left_behind_by_a_stopped_lister_is_answered_with_its_lag(redis, redis_url, spawn, tmp_path):
    import signal
    import time

    from jobjournal.lister.freshness import LAG_WARNING_S
    from tests.helpers import submit

    env = {**os.environ, "JOBJOURNAL_REDIS_URL": redis_url, "JOBJOURNAL_HOME": str(tmp_path)}
    spawn("manager")
    lister = spawn("lister")
    wait_inactive(redis, submit(redis, 2))
    wait_caught_up(redis)
    os.killpg(lister.pid, signal.SIGSTOP)  # the lister hangs: the view stays where it is
    try:
        later = submit(redis, 3)
        wait_inactive(redis, later)
        time.sleep(LAG_WARNING_S + 0.5)  # the newest entry not applied is now older than the warning's bound
        result = subprocess.run([sys.executable, "-m", "jobjournal", "jobs", "-A", "-a", "-n"], env=env, cwd=ROOT,
                                capture_output=True, text=True, timeout=120)
    finally:
        os.killpg(lister.pid, signal.SIGCONT)
    assert result.returncode == 0 and len(result.stdout.splitlines()) == 2, "the view's answer"
    assert "warning: no lister is applying the view: this answer may be out of date" in result.stderr
    assert "(30 events) behind the journal" in result.stderr and "warning: the view is at least" in result.stderr
