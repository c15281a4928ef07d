"""A `jobjournal worker` takes the ingest tasks waiting in its queue several at a time: each gets
its own answer and rq's records, a bad one fails alone, and a worker killed mid-batch loses nothing
it answered."""

import os
import signal
import threading
import time
from datetime import timedelta

import pytest
import rq.intermediate_queue
from rq import Queue, Worker
from rq.registry import FailedJobRegistry, FinishedJobRegistry, StartedJobRegistry
from rq.results import Result
from rq.serializers import JSONSerializer

from jobjournal.common import identity, inbox, keys, tasks
from jobjournal.common.connection import connect
from jobjournal.common.errors import RequestFailed
from jobjournal.common.ids import RenewedGenerators, f58
from jobjournal.common.jobspec import encode, make_jobspec
from jobjournal.common.settings import Settings
from jobjournal.manager import client, ingest, rq_batch
from jobjournal.manager.rq_worker import LeanWorker
from jobjournal.manager.task_tools import WorkerTools
from tests.helpers import wait_for

pytestmark = pytest.mark.timeout(120)

DOC = encode(make_jobspec(command=["true"])).decode()
BIG = make_jobspec(command=["true"], environment={f"VAR_{i}": "x" * 20 for i in range(20)})
"""A jobspec that takes a while to validate by the thousand."""


def _queued(redis, *arguments: tuple, **options) -> list:
    """Ingest tasks with these arguments, queued (no worker runs yet)."""
    queue = tasks.ingest_queue(redis)
    return [queue.enqueue(tasks.INGEST, *args, result_ttl=60, **options) for args in arguments]


def _inbox_jobs(redis) -> list[list]:
    """Each inbox entry's jobs."""
    return [inbox.decode(fields).jobs for _, fields in redis.xrange(keys.manager_inbox())]


def _results(queued) -> list[Result]:
    return [wait_for(lambda task=task: task.latest_result(), what=f"task {task.id}'s result") for task in queued]


def test_submissions_taken_in_one_batch_each_get_their_own_ids_in_one_inbox_entry(redis, spawn):
    queued = _queued(redis, *[([DOC] * count, 1000 + count) for count in (1, 2, 3, 4)])
    spawn("worker")  # the four wait in the queue: the worker takes them together
    ids = [result.return_value["ids"] for result in _results(queued)]
    assert [len(request_ids) for request_ids in ids] == [1, 2, 3, 4]
    every_id = [job_id for request_ids in ids for job_id in request_ids]
    assert every_id == sorted(set(every_id))
    [entry] = _inbox_jobs(redis)
    assert [(job.id, job.userid) for job in entry] == [
        (job_id, 1000 + len(request_ids)) for request_ids in ids for job_id in request_ids]


def test_rqs_records_show_each_task_of_a_batch_finished_with_its_arguments_gone(redis, spawn):
    queued = _queued(redis, ([DOC], 1000), ([DOC], 1001), ([DOC], 1002))
    spawn("worker")
    results = _results(queued)
    queue = tasks.ingest_queue(redis)
    for task, result in zip(queued, results, strict=True):
        task.refresh()
        assert task.get_status() == "finished" and task.worker_name and task.started_at <= task.ended_at
        assert result.type == Result.Type.SUCCESSFUL and result.execution_id
        assert task.args == [] and task.kwargs == {}  # they held the environments
    assert sorted(FinishedJobRegistry(queue=queue).get_job_ids()) == sorted(task.id for task in queued)
    assert StartedJobRegistry(queue=queue).get_job_ids() == [] and FailedJobRegistry(queue=queue).count == 0
    assert queue.count == 0 and redis.llen(queue.intermediate_queue_key) == 0

    def idle_with_three_done():
        [worker] = Worker.all(connection=redis)
        return worker.get_state() == "idle" and worker.successful_job_count == 3

    wait_for(idle_with_three_done, what="rq to see the worker idle, three tasks done")


def test_a_bad_request_in_a_batch_fails_alone_with_its_own_answer(redis, spawn):
    queued = _queued(
        redis,
        ([DOC], 1000),
        ([DOC, '{"command":["x"],"ntasks":-2}'], 1000),  # an invalid jobspec: an error answer
        ([DOC], 2**40),  # an invalid uid: an error answer
        ([DOC],),  # not ingest's arguments: the task fails
        ([DOC], 1001),
    )
    spawn("worker")
    good, bad_spec, bad_uid, _, other_good = [result.return_value for result in _results(queued)]
    assert bad_spec == {"error": "jobspec 2 of 2: invalid jobspec: Expected `int` >= 1 - at `$.ntasks`"}
    assert bad_uid == {"error": f"invalid userid {2**40}"}
    failed = queued[3]
    assert failed.get_status(refresh=True) == "failed" and "TypeError" in failed.latest_result().exc_string
    [entry] = _inbox_jobs(redis)
    assert [(job.id, job.userid) for job in entry] == [(good["ids"][0], 1000), (other_good["ids"][0], 1001)]


class _Pickled:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (os.system, (f"touch {self.path}",))


def test_a_task_naming_another_function_in_a_batch_is_refused_uncalled_and_the_rest_run(redis, spawn, tmp_path):
    marker = tmp_path / "ran"
    [first] = _queued(redis, ([DOC], 1000))
    tasks.ingest_queue(redis).enqueue("os.system", f"touch {marker}")
    Queue(keys.INGEST_QUEUE, connection=redis).enqueue(tasks.INGEST, [_Pickled(marker)], 1000)  # rq's pickle
    [last] = _queued(redis, ([DOC], 1001))
    spawn("worker")
    assert all(result.return_value["ids"] for result in _results([first, last]))
    failed = FailedJobRegistry(keys.INGEST_QUEUE, connection=redis, serializer=JSONSerializer)
    wait_for(lambda: failed.count == 2, what="both refused")
    for task_id in failed.get_job_ids():
        assert "not a jobjournal task" in tasks.ingest_queue(redis).fetch_job(task_id).latest_result().exc_string
    assert not marker.exists()
    assert len(_inbox_jobs(redis)) == 1


def test_with_identity_acl_each_request_of_a_batch_is_proved_on_its_own_and_once(redis, spawn):
    redis.hset(keys.users(), "alice", 1000)
    body = identity.submission_body([DOC], 0)
    redis.set(keys.proof("alice", "n1"), identity.digest(body))
    proved = {"user": "alice", "proof": "n1"}
    queued = _queued(redis, ([DOC], 0, proved), ([DOC], 0, None), ([DOC], 0, proved))  # the third: a copy
    spawn("worker", env={"JOBJOURNAL_IDENTITY": "acl"})
    first, unproved, copied = [result.return_value for result in _results(queued)]
    assert "not authenticated" in unproved["error"] and "no proof from user alice" in copied["error"]
    [entry] = _inbox_jobs(redis)
    assert [(job.id, job.userid) for job in entry] == [(first["ids"][0], 1000)]  # the uid proved, not the one claimed


def _tools(redis, **settings) -> WorkerTools:
    return WorkerTools(Settings(**settings), redis, RenewedGenerators(redis), identity.ingest_key(redis))


def test_the_accepted_requests_of_a_batch_share_entries_of_at_most_one_requests_size(redis):
    requests = [ingest.Request([DOC] * count, 1000) for count in (4000, 4000, 4000, 9000, 1)]
    submission = ingest.gather(_tools(redis), requests)
    ingest.send(_tools(redis), submission)
    assert [entry.requests for entry in submission.entries] == [[0, 1], [2], [3, 4]]
    assert [len(jobs) for jobs in _inbox_jobs(redis)] == [8000, 4000, 9001]
    limit = len(DOC) * 5000
    narrow = ingest.gather(_tools(redis, max_request_bytes=limit), requests[:3])
    assert [entry.requests for entry in narrow.entries] == [[0], [1], [2]]


def test_with_submit_on_disk_each_request_of_an_entry_hears_of_its_own_jobs(redis):
    tools = _tools(redis, submit_on_disk_s=5)
    submission = ingest.gather(tools, [ingest.Request([DOC] * 2, 1000), ingest.Request([DOC], 1001)])
    ids = [reply["ids"] for reply in submission.replies]
    ingest.send(tools, submission)
    assert len(_inbox_jobs(redis)) == 1  # written in any case
    if inbox.on_disk_refusal(redis) is None:  # Redis 7.2 or newer, with an AOF: confirmed
        assert [reply["ids"] for reply in submission.replies] == ids
        return
    first, second = [reply["error"] for reply in submission.replies]
    assert first.startswith(f"jobs {f58(ids[0][0])}..{f58(ids[0][1])} written, but Redis cannot confirm it on disk")
    assert second.startswith(f"jobs {f58(ids[1][0])} written, but Redis cannot confirm it on disk")


def _waiting_submitters(redis_url, count: int, jobs: int) -> tuple[list[threading.Thread], list]:
    """`count` clients submitting `jobs` BIG jobspecs each and waiting for the answer; their
    outcomes (ids or the exception) fill the list as they end."""
    outcomes: list = []

    def submit(userid):
        own = connect(Settings(redis_url=redis_url))
        try:
            outcomes.append(client.submit(own, [BIG] * jobs, userid=userid, timeout=90))
        except RequestFailed as err:
            outcomes.append(err)
        finally:
            own.close()

    threads = [threading.Thread(target=submit, args=(1000 + index,)) for index in range(count)]
    for thread in threads:
        thread.start()
    return threads, outcomes


def _started_batch(redis, redis_url, spawn, count: int = 4):
    """A worker in the middle of a batch of `count` slow tasks, from waiting submitters:
    (worker, submitter threads, their outcomes)."""
    threads, outcomes = _waiting_submitters(redis_url, count, jobs=5000)
    queue = tasks.ingest_queue(redis)
    wait_for(lambda: queue.count == count, what="the submissions to be queued")
    worker = spawn("worker")
    started = StartedJobRegistry(queue=queue)
    wait_for(lambda: started.count == count, interval=0.002, what="the worker to start the batch")
    return worker, threads, outcomes


def test_a_worker_killed_mid_batch_loses_nothing_answered_and_rq_fails_what_it_did_not_answer(
        redis, redis_url, spawn):
    [answered] = _queued(redis, ([DOC], 1000))
    assert spawn("worker", "--burst").wait(60) == 0
    answered_ids = answered.latest_result().return_value["ids"]
    worker, threads, outcomes = _started_batch(redis, redis_url, spawn)
    redis.client_pause(60_000, all=False)  # from now on its answers (writes) would wait
    os.killpg(worker.pid, signal.SIGKILL)
    worker.wait(10)
    redis.client_unpause()
    queue = tasks.ingest_queue(redis)
    unanswered = StartedJobRegistry(queue=queue).get_job_ids()
    assert len(unanswered) == 4 and not any(queue.fetch_job(task_id).latest_result() for task_id in unanswered)
    # answers and their inbox entries are written together: the killed batch wrote neither
    assert [[job.id for job in jobs] for jobs in _inbox_jobs(redis)] == [answered_ids]
    assert queue.count == 0 and redis.llen(queue.intermediate_queue_key) == 0  # not to be run again
    # rq's maintenance, once the executions' heartbeats (timeout + 60 s) expired: each fails
    StartedJobRegistry(queue=queue).cleanup(timestamp=time.time() + 3600)
    for thread in threads:
        thread.join(60)
    assert len(outcomes) == 4 and all("AbandonedJobError" in str(outcome) for outcome in outcomes)
    assert not any(queue.fetch_job(task_id) for task_id in unanswered)  # each submitter deleted its task


def test_a_worker_asked_to_stop_mid_batch_answers_it_first(redis, redis_url, spawn):
    worker, threads, outcomes = _started_batch(redis, redis_url, spawn)
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(60) == 0
    for thread in threads:
        thread.join(60)
    assert sorted(len(outcome) for outcome in outcomes) == [5000] * 4
    assert sum(len(jobs) for jobs in _inbox_jobs(redis)) == 20000


def test_a_task_taken_and_never_started_is_failed_by_rqs_maintenance_not_run(redis, monkeypatch):
    queue = tasks.ingest_queue(redis)
    [task] = _queued(redis, ([DOC], 1000))
    taken = rq_batch.take(queue, JSONSerializer)  # and then the worker dies
    assert [job.id for job in taken.jobs] == [task.id] and queue.count == 0
    maintainer = LeanWorker([queue], connection=redis, settings=Settings())
    queue.intermediate_queue.cleanup(maintainer, queue)  # the first maintenance pass that sees it there
    later = rq.intermediate_queue.now() + timedelta(minutes=2)
    monkeypatch.setattr(rq.intermediate_queue, "now", lambda: later)
    queue.intermediate_queue.cleanup(maintainer, queue)  # one more than a minute later
    assert task.get_status(refresh=True) == "failed"
    assert "stuck in intermediate queue" in task.latest_result().exc_string
    assert redis.llen(queue.intermediate_queue_key) == 0 and redis.xlen(keys.manager_inbox()) == 0


def test_a_task_ended_in_a_batch_keeps_its_function_and_no_arguments(redis):
    queue = tasks.ingest_queue(redis)
    [task] = _queued(redis, ([DOC], 1000))
    worker = LeanWorker([queue], connection=redis, settings=Settings())
    batch = rq_batch.start(worker, queue, rq_batch.take(queue, JSONSerializer))  # its data never read
    with redis.pipeline() as pipe:
        rq_batch.finished(worker, batch, {task.id: {"ids": [1]}}, pipe)
        rq_batch.commit(pipe)
    task.refresh()
    assert (task.func_name, task.args, task.kwargs) == (tasks.INGEST, [], {})
    assert task.latest_result().return_value == {"ids": [1]} and task.get_status() == "finished"
