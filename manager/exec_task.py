"""The rq task that runs one job's command for the `rq` exec backend.

It reports through the manager's inbox (exec-started, exec-finished with the wait status),
keeps a heartbeat key alive, kills the command when asked (kill key) or when the time
limit passes, and never raises for a failing command: the status says it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time

from rq import get_current_job

from jobjournal.common import inbox, keys, messages
from jobjournal.common.throttle import Throttle
from jobjournal.manager.task_tools import task_tools

POLL_SECONDS = 0.1
HEARTBEAT_EVERY = 0.5
HEARTBEAT_TTL = 3
KILL_GRACE = 2.0


def run_job(job_id: int, command: list[str], cwd: str, environment: dict, duration: float) -> int | None:
    """rq entry point. The exec keys (kill, heartbeat) live beside the queues (rq's Redis); the
    reports go to the manager's inbox in the store."""
    redis = get_current_job().connection
    store = task_tools(redis).store
    if redis.exists(keys.exec_kill(job_id)):
        inbox.send(store, messages.ExecFinished(id=job_id, status=None, error="canceled before start"))
        return None
    redis.set(keys.exec_heartbeat(job_id), 1, ex=HEARTBEAT_TTL)
    try:
        process = subprocess.Popen(
            command,
            cwd=cwd or None,
            env={**os.environ, **environment},
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    except OSError as err:
        redis.delete(keys.exec_heartbeat(job_id))
        inbox.send(store, messages.ExecFinished(id=job_id, status=None, error=f"cannot run {command[0]}: {err}"))
        return None
    inbox.send(store, messages.ExecStarted(id=job_id))
    status, timed_out = _supervise(redis, job_id, process, duration)
    inbox.send(store, messages.ExecFinished(id=job_id, status=status, timeout=timed_out))
    redis.delete(keys.exec_heartbeat(job_id), keys.exec_kill(job_id))  # after the report, never before
    return status


def _supervise(redis, job_id: int, process: subprocess.Popen, duration: float) -> tuple[int, bool]:
    """Wait for the command; stop it on a kill request or past the time limit."""
    started = time.monotonic()
    beats = Throttle(HEARTBEAT_EVERY)
    killed_at = None
    timed_out = False
    while process.poll() is None:
        time.sleep(POLL_SECONDS)
        now = time.monotonic()
        if killed_at is None:
            timed_out = bool(duration) and now - started > duration
            if timed_out or redis.exists(keys.exec_kill(job_id)):
                _signal(process, signal.SIGTERM)
                killed_at = now
        elif now - killed_at > KILL_GRACE:
            _signal(process, signal.SIGKILL)
        if beats.due():
            redis.set(keys.exec_heartbeat(job_id), 1, ex=HEARTBEAT_TTL)
    return _wait_status(process.returncode), timed_out


def _wait_status(returncode: int) -> int:
    """waitpid(2)-style status from Popen's returncode (negative: killed by a signal)."""
    return -returncode if returncode < 0 else returncode << 8


def _signal(process: subprocess.Popen, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signum)
