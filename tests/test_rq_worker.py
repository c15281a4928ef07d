"""`jobjournal worker`: rq's SimpleWorker with less bookkeeping per task, still an rq worker."""

import subprocess
import sys
import threading
import time

import pytest
from rq import Queue, Worker
from rq.suspension import resume, suspend

from common import keys
from common.ids import GEN_BITS, SEQ_BITS
from common.jobspec import encode, make_jobspec
from manager import client
from tests.conftest import ROOT
from tests.helpers import wait_for

SPEC = make_jobspec(command=["true"])


@pytest.fixture
def ingest_worker(redis, spawn):
    proc = spawn("worker", "--queue", "ingest")
    wait_for(lambda: Worker.all(connection=redis), what="the worker to register")
    return proc


@pytest.fixture
def monitor(redis):
    """Record every command Redis runs while the block runs: `with monitor() as commands:`."""
    from contextlib import contextmanager

    @contextmanager
    def record():
        commands: list[str] = []
        done = threading.Event()
        ready = threading.Event()

        def listen():
            with redis.monitor() as feed:
                ready.set()
                for command in feed.listen():
                    commands.append(command["command"])
                    if done.is_set():
                        return

        thread = threading.Thread(target=listen, daemon=True)
        thread.start()
        ready.wait(5)
        time.sleep(0.1)
        yield commands
        done.set()
        redis.ping()
        thread.join(5)

    return record


def _outside_transactions(commands: list[str]) -> list[str]:
    """MONITOR shows a transaction as one run, MULTI to EXEC, when it executes."""
    outside, depth = [], 0
    for command in commands:
        if command == "MULTI":
            depth = 1
        elif command in ("EXEC", "DISCARD"):
            depth = 0
        elif not depth:
            outside.append(command)
    return outside


def _generator(job_id: int) -> int:
    return (job_id >> SEQ_BITS) & ((1 << GEN_BITS) - 1)


def test_the_worker_renews_its_keys_at_most_once_a_second_not_per_task(redis, ingest_worker, monitor):
    started = time.monotonic()
    with monitor() as commands:
        for _ in range(30):
            client.submit(redis, [SPEC], userid=1000)
    elapsed = time.monotonic() - started
    # the one renewal per task that rides in rq's task-start transaction costs no round trip
    beats = [c for c in _outside_transactions(commands) if c.startswith("HSET rq:worker:") and "last_heartbeat" in c]
    suspension_checks = [c for c in commands if c == "EXISTS rq:suspended"]
    # rq's SimpleWorker renews three times per task on its own: 90 round trips here
    assert len(beats) <= elapsed + 2
    assert len(suspension_checks) <= elapsed + 2
    [worker] = Worker.all(connection=redis)
    assert worker.get_state() == "idle" and worker.successful_job_count == 30
    assert redis.ttl(worker.key) > 60  # still alive to rq and dashboards


def test_ingest_tasks_on_one_worker_share_an_id_generator_for_a_second(redis, ingest_worker):
    first = client.submit(redis, [SPEC], userid=1000)
    counter = int(redis.get(keys.id_generator()))
    started = time.monotonic()
    ids = first + [job_id for _ in range(10) for job_id in client.submit(redis, [SPEC, SPEC], userid=1000)]
    renewals = int(redis.get(keys.id_generator())) - counter
    assert renewals <= time.monotonic() - started  # rq workers take a number per task: 10 here
    assert len(set(ids)) == 21 and ids == sorted(ids)
    assert len({_generator(job_id) for job_id in ids}) == 1 + renewals


def test_the_worker_takes_a_new_generator_number_after_a_second(redis, ingest_worker):
    [before] = client.submit(redis, [SPEC], userid=1000)
    time.sleep(1.1)
    [after] = client.submit(redis, [SPEC], userid=1000)
    assert _generator(after) == int(redis.get(keys.id_generator())) % (1 << GEN_BITS) != _generator(before)


def test_ingest_also_runs_on_a_plain_rq_worker(redis, redis_url):
    task = Queue(keys.INGEST_QUEUE, connection=redis).enqueue(
        "manager.ingest.ingest", [encode(SPEC)] * 2, 1000, result_ttl=10
    )
    subprocess.run(
        [sys.executable, "-m", "rq.cli", "worker", "--burst", "-w", "rq.SimpleWorker", "-u", redis_url,
         keys.INGEST_QUEUE],
        cwd=ROOT, check=True, timeout=60, capture_output=True,
    )
    ids = task.latest_result(timeout=5).return_value["ids"]
    assert len(ids) == 2 and redis.xlen(keys.manager_inbox()) == 1


def test_a_suspended_worker_takes_no_task_until_resumed(redis, ingest_worker):
    queue = Queue(keys.INGEST_QUEUE, connection=redis)
    suspend(redis)
    time.sleep(1.2)  # past the worker's next suspension check
    # a worker already waiting for a task takes the next one (as rq's does), then stops taking
    queue.enqueue("manager.ingest.ingest", [encode(SPEC)], 1000, result_ttl=10).latest_result(timeout=10)
    held = queue.enqueue("manager.ingest.ingest", [encode(SPEC)], 1000, result_ttl=10)
    time.sleep(1.5)
    assert held.get_status() == "queued"
    resume(redis)
    assert held.latest_result(timeout=10).return_value["ids"]


def test_the_worker_shows_busy_while_a_task_runs_and_records_its_last_heartbeat(redis, spawn):
    spawn("worker", "--queue", "exec")
    wait_for(lambda: Worker.all(connection=redis), what="the worker to register")
    task = Queue(keys.EXEC_QUEUE, connection=redis).enqueue("time.sleep", 1.0, result_ttl=30)
    wait_for(lambda: Worker.all(connection=redis)[0].get_state() == "busy", what="the worker to be busy")
    wait_for(lambda: Worker.all(connection=redis)[0].get_state() == "idle", what="the worker to be idle again")
    task.refresh()
    assert task.get_status() == "finished"
    assert task.started_at < task.ended_at <= task.last_heartbeat
