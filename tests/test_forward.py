"""A person's request through an ingest worker (manager/forward.py): what a person may send
reaches the inbox as it was sent; anything else is refused with its reason and writes nothing."""

from rq.job import Job

from jobjournal.common import keys, messages, tasks
from jobjournal.manager import forward
from tests.helpers import wait_for


def _answer(redis, task_id: str) -> dict:
    job = Job.fetch(task_id, connection=redis, serializer=tasks.ingest_queue(redis).serializer)
    result = job.latest_result(timeout=20)
    assert result is not None and result.type == result.Type.SUCCESSFUL, result and result.exc_string
    return result.return_value


def test_a_persons_cancel_reaches_the_inbox_through_an_ingest_worker_as_it_was_sent(redis, spawn):
    spawn("worker")
    sent = messages.Cancel(ids=[7, 8], userid=1000, note="done", user="alice", proof="p", reply_to="r1")
    forward.enqueue(redis, sent)
    wait_for(lambda: redis.xlen(keys.manager_inbox()) == 1, what="the request in the inbox")
    [(_, fields)] = redis.xrange(keys.manager_inbox())
    assert messages.decode_request(fields[b"msg"]) == sent


def test_a_submission_a_journal_request_or_an_oversize_one_is_not_forwarded(redis, spawn):
    spawn("worker")
    queue = tasks.ingest_queue(redis)
    refused = {
        "submit": messages.encode(messages.SubmitJobs(jobs=[])).decode(),
        "journal": messages.encode(messages.JournalRequest(consumer="c")).decode(),
        "oversize": '{"request": "cancel", "ids": [], "userid": 0, "note": "%s"}' % ("n" * (forward.MAX_BYTES + 1)),
        "not a request": "not json",
    }
    answers = {what: _answer(redis, queue.enqueue(tasks.FORWARD, message).id) for what, message in refused.items()}
    assert "not a person's to send" in answers["submit"]["error"] and "journal" in answers["journal"]["error"]
    assert "the limit is 1,048,576" in answers["oversize"]["error"]
    assert "bad request" in answers["not a request"]["error"]
    assert redis.xlen(keys.manager_inbox()) == 0
