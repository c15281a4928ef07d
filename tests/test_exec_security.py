"""What a job's secrets, the workers and the executors hold against: a secret stays in its job's
environment key; workers run jobjournal's task alone and never unpickle; a forged exec report or
dispatch changes nothing."""

import os
import secrets

import pytest
from rq import Queue
from rq.registry import FailedJobRegistry

from jobjournal.common import inbox, keys, messages, tasks
from jobjournal.common.jobspec import make_jobspec
from jobjournal.manager import client, exec_dispatch
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
    wait_for(lambda: "start" in names(redis, job_id))
    wait_for(lambda: _holding(redis, secret) == {env_key}, what="the secret to be in the environment key alone")
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


def test_a_worker_never_unpickles_a_task(redis, spawn, tmp_path):
    spawn("worker")
    marker = tmp_path / "ran"
    Queue(keys.INGEST_QUEUE, connection=redis).enqueue(tasks.INGEST, [_Payload(marker)], 1000)  # rq's pickle
    wait_for(lambda: FailedJobRegistry(keys.INGEST_QUEUE, connection=redis).count == 1 or not redis.llen(
        f"rq:queue:{keys.INGEST_QUEUE}"), what="the worker to take the task")
    assert not marker.exists()


def test_a_forged_exec_report_for_a_running_job_changes_nothing(redis, executing):
    [running] = submit(redis, command=["sleep", "60"])
    wait_for(lambda: "start" in names(redis, running))
    inbox.send(redis, messages.ExecFinished(id=running, status=0, token="0" * 32))
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
    wait_for(lambda: not exec_dispatch.is_waiting(redis, replay), what="the executor to take both")
    wait_for(lambda: any(b"token does not match" in fields[b"reason"]
                         for _, fields in redis.xrange(keys.dead_letters())), what="the forged dispatch set aside")
    assert runs.read_text() == "run\n"  # once: neither the forged nor the replayed dispatch ran it
