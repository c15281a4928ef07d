"""`jobjournal worker`: rq's SimpleWorker with less bookkeeping per task, still an rq worker."""

import subprocess
import sys
import time
from pathlib import Path

import pytest
from rq import Retry, Worker
from rq.registry import FailedJobRegistry
from rq.suspension import resume, suspend

from jobjournal.common import keys, tasks
from jobjournal.common.ids import GEN_BITS, SEQ_BITS
from jobjournal.common.jobspec import encode, make_jobspec
from jobjournal.manager import client
from jobjournal.manager.rq_worker import LeanWorker
from tests.conftest import ROOT
from tests.helpers import recording, wait_for

SPEC = make_jobspec(command=["true"])
SUSPENSION_CHECK = "EXISTS rq:suspended"


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
    suspension_checks = [c for c in commands if c == SUSPENSION_CHECK]
    # rq's SimpleWorker makes three renewals and a suspension check per task on its own: 90 and 30 here.
    # At most one a second over the recording: a bound that only grows on a slower machine.
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
    # at most one a second (a bound that only grows on a slower machine); a plain rq worker takes
    # one per task: 10 here
    assert 1 <= taken <= 1 + (time.monotonic() - started)
    assert len(set(ids)) == 20 and ids == sorted(ids)
    assert len({_generator(job_id) for job_id in ids}) == taken


def test_the_worker_takes_a_new_generator_number_after_a_second(redis, ingest_worker):
    [before] = client.submit(redis, [SPEC], userid=1000)
    time.sleep(1.1)  # at least; a slower machine only lets more time pass before the next task
    [after] = client.submit(redis, [SPEC], userid=1000)
    assert _generator(after) == _counter(redis) % (1 << GEN_BITS) != _generator(before)


@pytest.mark.parametrize("worker_class", ["rq.Worker", tasks.WORKER_CLASS])
def test_ingest_also_runs_on_rqs_own_worker_command(redis, redis_url, worker_class):
    task = tasks.ingest_queue(redis).enqueue(
        tasks.INGEST, [encode(SPEC).decode()] * 2, 1000, result_ttl=10
    )
    command = [sys.executable, "-m", "rq.cli", "worker", "--burst", "-w", worker_class, "-u", redis_url,
               "-S", "rq.serializers.JSONSerializer"]
    subprocess.run([*command, keys.INGEST_QUEUE], cwd=ROOT, check=True, timeout=60, capture_output=True)
    ids = task.latest_result(timeout=30).return_value["ids"]
    assert len(ids) == 2 and redis.xlen(keys.manager_inbox()) == 1
    task.refresh()
    assert task.get_status() == "finished" and task.args == []  # the worker that answered removed them


def test_a_suspended_worker_takes_no_task_until_resumed(redis, ingest_worker):
    queue = tasks.ingest_queue(redis)
    suspend(redis)
    # at least a second since the worker's last suspension check (made before it went idle), so
    # its next one is due; a slower machine only lets more time pass
    time.sleep(1.2)
    # a worker already waiting for a task takes the next one (as rq's does), then stops taking
    first = queue.enqueue(tasks.INGEST, [encode(SPEC).decode()], 1000, result_ttl=10)
    assert first.latest_result(timeout=30).return_value["ids"]
    wait_for(lambda: _state(redis) == "suspended", what="the worker to see the suspension")
    with recording(redis) as commands:
        held = queue.enqueue(tasks.INGEST, [encode(SPEC).decode()], 1000, result_ttl=10)

        def checked_since_held_was_queued():
            seen = list(commands)
            queued = next(i for i, command in enumerate(seen) if "PUSH" in command and held.id in command)
            return seen[queued:].count(SUSPENSION_CHECK) >= 2

        # the worker had its chance: it looked again, twice, while the task waited
        wait_for(checked_since_held_was_queued, what="the suspended worker to check again")
    assert held.get_status() == "queued" and _state(redis) == "suspended"
    resume(redis)
    assert held.latest_result(timeout=30).return_value["ids"]


def test_a_failing_task_fails_as_on_rq_and_the_worker_goes_on(redis, ingest_worker):
    queue = tasks.ingest_queue(redis)
    failing = queue.enqueue("builtins.int", "not a number", retry=Retry(max=1))  # refused: not our task
    wait_for(lambda: failing.get_status() == "failed", what="the task to fail twice")
    failing.refresh()
    assert failing.retries_left == 0 and "not a jobjournal task" in failing.latest_result().exc_string
    assert failing.id in FailedJobRegistry(queue=queue).get_job_ids()
    assert client.submit(redis, [SPEC], userid=1000)  # still working
    [worker] = Worker.all(connection=redis)
    assert worker.failed_job_count == 2 and worker.successful_job_count == 1


def test_a_burst_worker_runs_what_is_queued_and_exits(redis, spawn):
    task = tasks.ingest_queue(redis).enqueue(
        tasks.INGEST, [encode(SPEC).decode()], 1000, result_ttl=10
    )
    proc = spawn("worker", "--queue", "ingest", "--burst")
    assert proc.wait(30) == 0
    assert task.latest_result(timeout=10).return_value["ids"]
    assert Worker.all(connection=redis) == []


def test_a_worker_asked_for_the_exec_queue_says_that_executors_run_jobs_now(redis, spawn):
    proc = spawn("worker", "--queue", "exec")
    assert proc.wait(30) == 2
    assert "jobjournal executor" in Path(proc.log_path).read_text()
