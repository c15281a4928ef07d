"""What a job's secrets, the workers and the executors hold against: a secret stays in its job's
environment key; workers run jobjournal's task alone and never unpickle; a forged exec report or
dispatch changes nothing."""

import os
import secrets
import signal
import subprocess
import sys

import pytest
from rq import Queue
from rq.registry import FailedJobRegistry

from jobjournal.common import inbox, keys, messages, tasks
from jobjournal.common.jobspec import make_jobspec
from jobjournal.manager import client, exec_dispatch
from tests.conftest import ROOT
from tests.helpers import names, part_of, submit, wait_for, wait_inactive

pytestmark = pytest.mark.timeout(90)


@pytest.fixture
def executing(redis, start_manager, spawn):
    start_manager(exec_backend="process")
    spawn("worker")
    spawn("executor")
    wait_for(lambda: redis.hlen(keys.exec_executors()) == 1, what="the executor to register")


def _holding(redis, needle: bytes) -> set[str]:
    """Every key of the server whose content (any type) holds `needle`."""
    found = set()
    for key in redis.scan_iter(count=1000):
        kind = redis.type(key).decode()
        match kind:
            case "string":
                values = [redis.get(key) or b""]
            case "hash":
                values = [b"%s=%s" % pair for pair in redis.hgetall(key).items()]
            case "list":
                values = redis.lrange(key, 0, -1)
            case "set":
                values = list(redis.smembers(key))
            case "zset":
                values = redis.zrange(key, 0, -1)
            case "stream":
                values = [b"%s=%s" % pair for _, fields in redis.xrange(key) for pair in fields.items()]
            case _:
                values = []
        if any(needle in value for value in values):
            found.add(key.decode())
    return found


def test_a_secret_in_a_jobs_environment_lives_in_its_environment_key_alone(redis, executing):
    secret = secrets.token_hex(16).encode()
    spec = make_jobspec(command=["sh", "-c", 'sleep 0.5; test -n "$API_TOKEN"'],
                        environment={"API_TOKEN": secret.decode()})
    [job_id] = client.submit(redis, [spec])
    env_key = part_of(redis, job_id).job_environment(job_id)
    # acknowledged: in the inbox until the manager posts the job (rq's task keeps none of it), or posted
    assert _holding(redis, secret) <= {env_key, keys.manager_inbox()}
    wait_for(lambda: "start" in names(redis, job_id))
    # the step that posted the submission trimmed the inbox; the start came in a later step
    assert _holding(redis, secret) == {env_key}
    wait_inactive(redis, [job_id])
    assert names(redis, job_id)[-4] == "finish" and client.eventlog(redis, job_id)[-4].status == 0  # it had it
    assert _holding(redis, secret) == {env_key}
    client.purge(redis, [job_id], force=True)
    assert _holding(redis, secret) == set()


def test_a_worker_fails_a_task_that_names_another_function_without_calling_it(redis, spawn, tmp_path):
    spawn("worker")
    marker = tmp_path / "ran"
    task = tasks.ingest_queue(redis).enqueue("os.system", f"touch {marker}")
    wait_for(lambda: task.get_status(refresh=True) == "failed")
    assert "not a jobjournal task" in task.latest_result().exc_string
    assert not marker.exists()


class _Payload:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (os.system, (f"touch {self.path}",))


@pytest.mark.parametrize("how", ["jobjournal worker", "rq worker -w LeanWorker"])
def test_a_worker_never_unpickles_a_task_and_goes_on(redis, redis_url, spawn, tmp_path, how):
    marker = tmp_path / "ran"
    Queue(keys.INGEST_QUEUE, connection=redis).enqueue(tasks.INGEST, [_Payload(marker)], 1000)  # rq's pickle
    if how == "jobjournal worker":
        worker = spawn("worker")
    else:  # rq's own command, without -S: the worker class still reads JSON only
        worker = subprocess.Popen([sys.executable, "-m", "rq.cli", "worker", "-w", tasks.WORKER_CLASS, "-u",
                                   redis_url, keys.INGEST_QUEUE], cwd=ROOT, start_new_session=True,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: FailedJobRegistry(keys.INGEST_QUEUE, connection=redis).count == 1,
                 what="the pickled task to fail")
        assert not marker.exists()
        assert client.submit(redis, [make_jobspec(command=["true"])])  # the worker goes on
        assert worker.poll() is None
    finally:
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(10)


def test_a_forged_exec_report_for_a_running_job_changes_nothing(redis, executing):
    [running] = submit(redis, command=["sleep", "60"])
    wait_for(lambda: "start" in names(redis, running))
    seen = exec_dispatch.signed(exec_dispatch.secret(redis), messages.ExecStarted(id=running))  # as the inbox shows
    inbox.send(redis, messages.ExecFinished(id=running, status=0, mac="0" * 32))  # unsigned
    inbox.send(redis, messages.ExecFinished(id=running, status=0, mac=seen.mac))  # another report's MAC
    [held] = submit(redis, command=["true"], urgency=0)
    assert client.set_urgency(redis, held, 0, userid=1000) == {}  # answered after the forged report
    assert names(redis, running)[-1] == "start"
    assert client.cancel(redis, [running], userid=1000) == {}
    wait_inactive(redis, [running])


def test_a_dispatch_not_from_the_manager_runs_nothing(redis, executing, tmp_path):
    runs = tmp_path / "runs"
    [job_id] = submit(redis, command=["sh", "-c", f"echo run >> {runs}"])
    wait_inactive(redis, [job_id])
    exec_dispatch.dispatch(redis, job_id, "f" * 32)  # forged: the wrong token
    replay = exec_dispatch.dispatch(redis, job_id, exec_dispatch.token_for(exec_dispatch.secret(redis), job_id))
    reasons = lambda: [fields[b"reason"] for _, fields in redis.xrange(keys.dead_letters())]  # noqa: E731
    wait_for(lambda: len(reasons()) == 2, what="the executor to set both aside")
    assert b"token does not match" in reasons()[0] and b"taken by an executor before" in reasons()[1]
    assert not exec_dispatch.is_waiting(redis, replay) and runs.read_text() == "run\n"  # it ran once
