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
    missing = jj("job", f58(12345))
    assert missing.returncode == 1 and missing.stderr.strip() == f"Error: no such job: {f58(12345)}"
    assert jj("--version").stdout.startswith("jobjournal, version")
