"""`make demo`: the whole system on the embedded Redis, in about 20 seconds.

Starts Redis, a manager (process exec backend), ingest workers, an executor and a lister;
submits jobs that complete, fail, get canceled and time out; runs two jobs at once and shows
one's output; shows final states, one eventlog, the journal's tail and the lister's view
(`jobs -a`, `jobs --stats`); then stops everything it started.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from jobjournal.common import events as ev
from jobjournal.common.connection import connect
from jobjournal.common.ids import f58, parse_job_id
from jobjournal.common.redis_server import EmbeddedRedis
from jobjournal.common.settings import load_settings
from jobjournal.common.states import result_of
from jobjournal.manager import client

ROOT = Path(__file__).resolve().parent.parent


def jobjournal(*args: str, show: bool = True) -> str:
    if show:
        print(f"$ jobjournal {' '.join(args)}", flush=True)
    result = subprocess.run(
        [sys.executable, "-m", "jobjournal", *args], cwd=ROOT, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        sys.exit(f"demo: jobjournal {' '.join(args)} failed:\n{result.stderr}")
    if show and result.stdout:
        print(result.stdout.rstrip(), flush=True)
    return result.stdout


def start(home: Path, name: str, *args: str) -> subprocess.Popen:
    log = open(home / f"{name}.log", "w")  # noqa: SIM115 - the child keeps it
    return subprocess.Popen(
        [sys.executable, "-m", "jobjournal", *args], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT
    )


def submit(*args: str) -> list[int]:
    return [parse_job_id(line) for line in jobjournal("submit", *args).split()]


def summary(redis, job_id: int) -> str:
    events = client.eventlog(redis, job_id)
    finish = next((e.status for e in events if isinstance(e, ev.Finish)), None)
    fatal = next((e for e in events if isinstance(e, ev.Exception_) and e.severity == 0), None)
    state = "INACTIVE" if isinstance(events[-1], ev.Clean) else "ACTIVE"
    result = result_of(finish, fatal).name if state == "INACTIVE" else "-"
    detail = f"exception {fatal.type}: {fatal.note}" if fatal else f"wait status {finish}"
    return f"{f58(job_id):<14} {state:<9} {result:<10} {detail}"


def main() -> None:
    home = Path(tempfile.mkdtemp(prefix="jj-demo-", dir="/tmp"))
    os.environ.update(JOBJOURNAL_HOME=str(home), JOBJOURNAL_EXEC_BACKEND="process")
    os.environ.pop("JOBJOURNAL_REDIS_URL", None)
    server = EmbeddedRedis(home)
    procs: list[subprocess.Popen] = []
    began = time.monotonic()
    try:
        print(f"== embedded Redis: {server.start()}")
        procs.append(start(home, "manager", "manager"))
        procs += [start(home, f"worker-{i}", "worker") for i in range(2)]  # ingest
        procs.append(start(home, "executor", "executor"))  # runs the jobs, several at once
        procs.append(start(home, "lister", "lister"))
        redis = connect(load_settings())
        wait_leading(redis)

        print("\n== submitting")
        done = submit("--name", "hello", "--", "echo", "hello from jobjournal")
        done += submit("--cc", "2", "--name", "compute", "--", "sh", "-c", "sleep 0.5")
        failed = submit("--name", "broken", "--", "sh", "-c", "exit 2")
        timed_out = submit("--time-limit", "1s", "--name", "slow", "--", "sleep", "30")
        to_cancel = submit("--name", "unwanted", "--", "sleep", "60")
        wait_started(redis, to_cancel[0])
        jobjournal("cancel", "-m", "not needed after all", f58(to_cancel[0]))

        job_ids = done + failed + timed_out + to_cancel
        for job_id in job_ids:
            for _ in client.follow_eventlog(redis, job_id, timeout=30):
                pass

        print("\n== two jobs at once, and what one of them wrote")
        pair = submit("--cc", "2", "--name", "pair", "--env", "GREETING=hello", "--", "sh", "-c",
                      'echo "$GREETING from job $JOBJOURNAL_JOB_ID"; sleep 1; echo done')
        wait_listed_running("pair", len(pair))
        jobjournal("jobs", "--name", "pair")
        jobjournal("job", "output", "--follow", f58(pair[0]))
        jobjournal("job", "wait", f58(pair[1]))
        job_ids += pair

        print(f"\n== final states\n{'ID':<14} {'STATE':<9} {'RESULT':<10} DETAIL")
        for job_id in job_ids:
            print(summary(redis, job_id))
        print()
        jobjournal("eventlog", "--human", f58(timed_out[0]))
        print()
        jobjournal("journal", "--tail", "8")
        wait_listed(len(job_ids))
        print()
        jobjournal("jobs", "-a")
        print()
        jobjournal("jobs", "--stats")
        redis.close()
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(10)
        server.stop()
        shutil.rmtree(home, ignore_errors=True)
    print(f"\n== done in {time.monotonic() - began:.1f}s; everything the demo started is stopped")


def wait_listed(count: int, timeout: float = 20) -> None:
    """Wait until the lister's view shows every demo job as inactive."""
    deadline = time.monotonic() + timeout
    while f"{count} inactive" not in jobjournal("jobs", "--stats", show=False):
        if time.monotonic() > deadline:
            sys.exit("demo: the lister did not catch up")
        time.sleep(0.1)


def wait_listed_running(name: str, count: int, timeout: float = 20) -> None:
    """Wait until the lister's view shows `count` jobs of this name running."""
    deadline = time.monotonic() + timeout
    while jobjournal("jobs", "--name", name, "-n", "-o", "{status_abbrev}", show=False).split() != ["R"] * count:
        if time.monotonic() > deadline:
            sys.exit(f"demo: the {name} jobs were not listed as running together")
        time.sleep(0.05)


def wait_leading(redis, timeout: float = 30) -> None:
    """Wait until the manager leads (a submission before that is queued: `submit` exits 3)."""
    deadline = time.monotonic() + timeout
    while not client.manager_running(redis):
        if time.monotonic() > deadline:
            sys.exit("demo: the manager did not take its lease")
        time.sleep(0.05)


def wait_started(redis, job_id: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not any(isinstance(e, ev.Start) for e in client.eventlog(redis, job_id)):
        if time.monotonic() > deadline:
            sys.exit(f"demo: job {f58(job_id)} did not start")
        time.sleep(0.05)


if __name__ == "__main__":
    main()
