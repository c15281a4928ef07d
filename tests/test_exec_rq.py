"""The rq exec backend runs real commands on rq workers, with real exit statuses."""

import os
import signal

import pytest

from jobjournal.common import events as ev
from jobjournal.common import keys
from tests.helpers import eventlog, names, submit, wait_for, wait_inactive

pytestmark = pytest.mark.timeout(90)


@pytest.fixture
def rq_system(redis, start_manager, spawn):
    start_manager(exec_backend="rq")
    workers = [spawn("worker", "--queue", "exec") for _ in range(2)]
    return workers


def _finish(redis, job_id) -> ev.Finish:
    return next(e for e in eventlog(redis, job_id) if isinstance(e, ev.Finish))


def _exception(redis, job_id) -> ev.Exception_:
    return next(e for e in eventlog(redis, job_id) if isinstance(e, ev.Exception_))


def test_a_real_command_runs_with_its_environment_and_exit_status(redis, rq_system, tmp_path):
    out = tmp_path / "out"
    [ok] = submit(redis, command=["sh", "-c", f'echo "$GREETING" > {out}'], environment={"GREETING": "hi"})
    [failing] = submit(redis, command=["sh", "-c", "exit 3"], cwd=str(tmp_path))
    wait_inactive(redis, [ok, failing])
    assert out.read_text() == "hi\n"
    assert _finish(redis, ok).status == 0
    assert _finish(redis, failing).status == 3 << 8
    assert names(redis, ok) == [
        "submit", "validate", "depend", "priority", "alloc", "start", "finish", "release", "free", "clean"
    ]


def test_a_command_past_its_time_limit_is_killed_with_a_timeout_exception(redis, rq_system):
    [job_id] = submit(redis, command=["sleep", "30"], duration=0.5)
    wait_inactive(redis, [job_id])
    assert _exception(redis, job_id).type == "timeout"
    assert _finish(redis, job_id).status == signal.SIGTERM


def test_canceling_a_running_command_kills_it(redis, rq_system):
    [job_id] = submit(redis, command=["sleep", "30"])
    wait_for(lambda: "start" in names(redis, job_id))
    from jobjournal.manager import client

    assert client.cancel(redis, [job_id], userid=1000) == {}
    wait_inactive(redis, [job_id])
    assert _exception(redis, job_id).type == "cancel"
    assert _finish(redis, job_id).status == signal.SIGTERM


def test_a_command_that_cannot_start_ends_with_an_exec_exception(redis, rq_system):
    [job_id] = submit(redis, command=["/nonexistent/program"])
    wait_inactive(redis, [job_id])
    exception = _exception(redis, job_id)
    assert exception.type == "exec" and "cannot run /nonexistent/program" in exception.note
    assert "finish" not in names(redis, job_id)


def test_a_job_whose_rq_worker_dies_ends_with_an_exception(redis, start_manager, spawn, tmp_path):
    start_manager(exec_backend="rq")
    worker = spawn("worker", "--queue", "exec")
    pidfile = tmp_path / "pid"
    [job_id] = submit(redis, command=["sh", "-c", f"echo $$ > {pidfile}; exec sleep 30"])
    wait_for(lambda: "start" in names(redis, job_id) and pidfile.exists() and pidfile.read_text())
    os.killpg(worker.pid, signal.SIGKILL)
    os.kill(int(pidfile.read_text()), signal.SIGKILL)  # the command lives in its own session
    wait_inactive(redis, [job_id])
    exception = _exception(redis, job_id)
    assert exception.type == "exec" and "worker lost" in exception.note
    assert not redis.exists(keys.exec_heartbeat(job_id))


def test_event_timestamps_of_real_jobs_never_go_backwards(redis, rq_system):
    job_ids = submit(redis, command=["sleep", "30"], duration=0.3) + submit(redis, command=["true"])
    wait_inactive(redis, job_ids)
    for job_id in job_ids:
        stamps = [event.timestamp for event in eventlog(redis, job_id)]
        assert stamps == sorted(stamps)


def test_a_restarted_manager_ends_rq_jobs_whose_worker_is_gone(redis, start_manager, spawn, tmp_path):
    first = start_manager(exec_backend="rq")
    worker = spawn("worker", "--queue", "exec")
    pidfile = tmp_path / "pid"
    [job_id] = submit(redis, command=["sh", "-c", f"echo $$ > {pidfile}; exec sleep 60"])
    wait_for(lambda: "start" in names(redis, job_id) and pidfile.exists() and pidfile.read_text())
    first.stop.set()
    wait_for(lambda: not first.leading.is_set())
    os.killpg(worker.pid, signal.SIGKILL)
    os.kill(int(pidfile.read_text()), signal.SIGKILL)
    start_manager(exec_backend="rq")
    wait_inactive(redis, [job_id])
    exception = _exception(redis, job_id)
    assert exception.type == "exec" and "worker lost" in exception.note
