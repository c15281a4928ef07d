"""`jobjournal worker`: rq's SimpleWorker with less bookkeeping per task, still an rq worker."""

import subprocess
import sys
import threading
import time
from contextlib import contextmanager

import pytest
from jobjournal.common import keys, tasks
from jobjournal.common.ids import GEN_BITS, SEQ_BITS
from jobjournal.common.jobspec import encode, make_jobspec
from jobjournal.manager import client
from jobjournal.manager.rq_worker import LeanWorker
from rq import Queue, Retry, Worker
from rq.registry import FailedJobRegistry
from rq.suspension import resume, suspend

from tests.conftest import ROOT
from tests.helpers import wait_for

SPEC = make_jobspec(command=["true"])
END_OF_RECORDING = "jobjournal-test-end-of-recording"


def _start_worker(redis, spawn, *args):
    proc = spawn("worker", *args)
    wait_for(lambda: _state(redis) == "idle", what="the worker to wait for tasks")
    return proc


def _state(redis) -> str | None:
    workers = Worker.all(connection=redis)
    return workers[0].get_state() if workers else None


@pytest.fixture
def ingest_worker(redis, spawn):
    return _start_worker(redis, spawn, "--queue", "ingest")


@contextmanager
def recording(redis):
    """Every command Redis runs inside the block (MONITOR), in order."""
    commands: list[str] = []
    ready = threading.Event()

    def listen():
        with redis.monitor() as feed:
            ready.set()
            for command in feed.listen():
                if END_OF_RECORDING in command["command"]:
                    return
                commands.append(command["command"])

    thread = threading.Thread(target=listen, daemon=True)
    thread.start()
    ready.wait(5)
    time.sleep(0.1)
    yield commands
    redis.echo(END_OF_RECORDING)
    thread.join(5)


def _outside_transactions(commands: list[str]) -> list[str]:
    """MONITOR shows a transaction as one run, MULTI to EXEC, when it executes."""
    outside, inside = [], False
    for command in commands:
        if command == "MULTI":
            inside = True
        elif command in ("EXEC", "DISCARD"):
            inside = False
        elif not inside:
            outside.append(command)
    return outside


def _generator(job_id: int) -> int:
    return (job_id >> SEQ_BITS) & ((1 << GEN_BITS) - 1)


def _counter(redis) -> int:
    return int(redis.get(keys.id_generator()) or 0)


def test_the_worker_renews_its_keys_at_most_once_a_second_not_per_task(redis, ingest_worker):
    started = time.monotonic()
    with recording(redis) as commands:
        for _ in range(30):
            client.submit(redis, [SPEC], userid=1000)
    elapsed = time.monotonic() - started
    # the renewal that rides in rq's task-start transaction costs no round trip
    beats = [c for c in _outside_transactions(commands) if c.startswith("HSET rq:worker:") and "last_heartbeat" in c]
    suspension_checks = [c for c in commands if c == "EXISTS rq:suspended"]
    # rq's SimpleWorker makes three renewals and a suspension check per task on its own: 90 and 30 here
    assert len(beats) <= elapsed + 2 and len(suspension_checks) <= elapsed + 2
    wait_for(lambda: _state(redis) == "idle", what="the worker to be idle")
    [worker] = LeanWorker.all(connection=redis)  # rq's own tools (rq info -w) can load it
    assert worker.successful_job_count == 30
    # the task's shorter TTL never replaced the idle one: the keys outlast the wait for a task
    assert redis.ttl(worker.key) > worker.dequeue_timeout


def test_ingest_tasks_on_one_worker_share_an_id_generator_for_a_second(redis, ingest_worker):
    counter = _counter(redis)
    started = time.monotonic()
    ids = [job_id for _ in range(10) for job_id in client.submit(redis, [SPEC, SPEC], userid=1000)]
    taken = _counter(redis) - counter
    assert 1 <= taken <= 1 + (time.monotonic() - started)  # a plain rq worker takes one per task: 10 here
    assert len(set(ids)) == 20 and ids == sorted(ids)
    assert len({_generator(job_id) for job_id in ids}) == taken


def test_the_worker_takes_a_new_generator_number_after_a_second(redis, ingest_worker):
    [before] = client.submit(redis, [SPEC], userid=1000)
    time.sleep(1.1)
    [after] = client.submit(redis, [SPEC], userid=1000)
    assert _generator(after) == _counter(redis) % (1 << GEN_BITS) != _generator(before)


@pytest.mark.parametrize("worker_class", ["rq.Worker", tasks.WORKER_CLASS])
def test_ingest_also_runs_on_rqs_own_worker_command(redis, redis_url, worker_class):
    task = Queue(keys.INGEST_QUEUE, connection=redis).enqueue(
        tasks.INGEST, [encode(SPEC)] * 2, 1000, result_ttl=10
    )
    command = [sys.executable, "-m", "rq.cli", "worker", "--burst", "-w", worker_class, "-u", redis_url]
    subprocess.run([*command, keys.INGEST_QUEUE], cwd=ROOT, check=True, timeout=60, capture_output=True)
    ids = task.latest_result(timeout=5).return_value["ids"]
    assert len(ids) == 2 and redis.xlen(keys.manager_inbox()) == 1


def test_a_suspended_worker_takes_no_task_until_resumed(redis, ingest_worker):
    queue = Queue(keys.INGEST_QUEUE, connection=redis)
    suspend(redis)
    time.sleep(1.2)  # past the worker's next suspension check
    # a worker already waiting for a task takes the next one (as rq's does), then stops taking
    first = queue.enqueue(tasks.INGEST, [encode(SPEC)], 1000, result_ttl=10)
    assert first.latest_result(timeout=10).return_value["ids"]
    held = queue.enqueue(tasks.INGEST, [encode(SPEC)], 1000, result_ttl=10)
    time.sleep(1.5)
    assert held.get_status() == "queued"
    resume(redis)
    assert held.latest_result(timeout=10).return_value["ids"]


def test_a_failing_task_fails_as_on_rq_and_the_worker_goes_on(redis, ingest_worker):
    queue = Queue(keys.INGEST_QUEUE, connection=redis)
    failing = queue.enqueue("builtins.int", "not a number", retry=Retry(max=1))
    wait_for(lambda: failing.get_status() == "failed", what="the task to fail twice")
    failing.refresh()
    assert failing.retries_left == 0 and "ValueError" in failing.latest_result().exc_string
    assert failing.id in FailedJobRegistry(queue=queue).get_job_ids()
    assert client.submit(redis, [SPEC], userid=1000)  # still working
    [worker] = Worker.all(connection=redis)
    assert worker.failed_job_count == 2 and worker.successful_job_count == 1


def test_a_burst_worker_runs_what_is_queued_and_exits(redis, spawn):
    task = Queue(keys.INGEST_QUEUE, connection=redis).enqueue(
        tasks.INGEST, [encode(SPEC)], 1000, result_ttl=10
    )
    proc = spawn("worker", "--queue", "ingest", "--burst")
    assert proc.wait(30) == 0
    assert task.latest_result(timeout=1).return_value["ids"]
    assert Worker.all(connection=redis) == []


def test_an_exec_worker_shows_busy_while_a_task_runs_and_takes_no_generator_number(redis, spawn):
    _start_worker(redis, spawn, "--queue", "exec")
    task = Queue(keys.EXEC_QUEUE, connection=redis).enqueue("time.sleep", 1.0, result_ttl=30)
    wait_for(lambda: _state(redis) == "busy", what="the worker to be busy")
    wait_for(lambda: _state(redis) == "idle", what="the worker to be idle again")
    task.refresh()
    assert task.get_status() == "finished" and task.started_at < task.ended_at == task.last_heartbeat
    assert redis.get(keys.id_generator()) is None
