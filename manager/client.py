"""The Python API over the manager: submit through rq, requests through the inbox, eventlogs."""

from __future__ import annotations

import json
import math
import os
import time
import uuid
from collections.abc import Iterator

import redis as redis_lib

from jobjournal.common import events as ev
from jobjournal.common import identity, inbox, keys, messages, output, tasks
from jobjournal.common.errors import InvalidJobspec, NoSuchJob, Queued, RequestFailed, StillActive
from jobjournal.common.ids import f58
from jobjournal.common.jobspec import Jobspec, encode
from jobjournal.common.layout import read_layout
from jobjournal.common.packed import pack, pairs, taken_transaction
from jobjournal.manager import forward

DEFAULT_TIMEOUT = 30.0


def submit(
    redis, jobspecs: list[Jobspec], userid: int | None = None, timeout: float = DEFAULT_TIMEOUT, queues=None,
    max_request_bytes: int | None = None,
) -> list[int]:
    """Submit jobs through the ingest queue (on `queues`, rq's Redis, if it is not the store);
    returns their ids once an ingest worker has handed them to the manager. `max_request_bytes`:
    refuse here, before sending, what the ingest worker would refuse for its size."""
    from rq.results import Result  # imported here: rq adds ~30 ms to every other command's start

    userid = os.getuid() if userid is None else userid
    queues = redis if queues is None else queues
    queue = tasks.ingest_queue(queues)
    documents = [encode(spec).decode() for spec in jobspecs]
    if max_request_bytes is not None:
        from jobjournal.manager.ingest import check_request_size

        check_request_size(documents, max_request_bytes)
    # result_ttl: the waiting submitter reads the result at once. The task's arguments (full
    # jobspecs, environments included) must not linger in rq's keys: the worker that answers
    # removes them, and the submitter deletes a task that failed or was not answered; so its
    # description (rq's default shows the arguments) names none.
    user, proof = identity.prove(redis, identity.submission_body(documents, userid))
    with queues.pipeline() as pipe:  # rq's enqueue writes its transaction here; it is sent with the wait
        task = queue.enqueue(
            tasks.INGEST,
            documents,
            userid,
            {"user": user, "proof": proof} if user else None,
            result_ttl=10,
            failure_ttl=3600,
            description=f"submit {len(documents)} jobspecs as uid {userid}",
            pipeline=pipe,
        )
        result = _enqueued_and_answered(queues, pipe, task, timeout)
    if result is None or result.type != Result.Type.SUCCESSFUL:
        task.delete()
    if result is None:
        raise RequestFailed(f"no ingest worker answered within {timeout:g}s: is `jobjournal worker` running?")
    if result.type != Result.Type.SUCCESSFUL:
        raise RequestFailed(f"submission failed: {_last_line(result.exc_string)}")
    value = result.return_value
    if "error" in value:
        error = RequestFailed if value["error"].startswith("rate limit") else InvalidJobspec
        raise error(value["error"])
    return value["ids"]


def _enqueued_and_answered(queues, pipe, task, timeout: float):
    """rq's enqueue of `task` (the commands it queued in `pipe`), as one transaction, and the wait
    for the task's result (XREAD BLOCK on its results stream, as rq's latest_result), sent in one
    write: one round trip, where enqueue and latest_result make two. The task's Result; None if
    none came within `timeout`. An error reply of the enqueue raises at once (nothing was queued)."""
    from rq.results import Result

    transaction = taken_transaction(pipe)
    wait = ("XREAD", "BLOCK", max(1, math.ceil(timeout)) * 1000, "STREAMS", Result.get_key(task.id), "0-0")
    reply = _after_transaction(queues, transaction, wait)
    if reply is None:
        return None
    [(_, entries)] = pairs(reply)  # RESP2 or RESP3
    result_id, fields = entries[-1]
    return Result.restore(task.id, result_id.decode(), dict(pairs(fields)), connection=queues,
                          serializer=task.serializer)


def _after_transaction(redis, transaction: list[tuple], blocking: tuple):
    """Send a transaction and a blocking command in one write; the blocking command's reply. The
    transaction's first error reply raises without waiting for it (the connection is dropped)."""
    pool = redis.connection_pool
    connection = pool.get_connection()
    try:
        connection.send_packed_command([b"".join(pack(command) for command in [*transaction, blocking])])
        replies = [_reply(connection) for _ in transaction]
        executed = replies[-1] if isinstance(replies[-1], list) else []
        errors = [reply for reply in [*replies, *executed] if isinstance(reply, Exception)]
        if errors:
            raise errors[0]
        return connection.read_response()
    except BaseException:
        connection.disconnect()  # a reply may still be due (the blocking command's): not waited for
        raise
    finally:
        pool.release(connection)


def _reply(connection):
    """The next reply; an error reply as its ResponseError, not raised."""
    try:
        return connection.read_response()
    except redis_lib.ResponseError as err:
        return err


NO_MANAGER = "no manager is running: {what} in the inbox until `jobjournal manager` starts"


def request(redis, message: messages.Request, timeout: float = DEFAULT_TIMEOUT, queues=None) -> messages.Reply:
    """Send a request to the manager and wait for its reply; Queued at once when no manager runs
    (the request stays in the inbox and takes effect when one starts). Logged in as an ACL user,
    the request goes through an ingest worker (manager/forward.py; on `queues`, rq's Redis, if it is
    not the store), and the reply comes under that user's name."""
    message.reply_to = uuid.uuid4().hex
    message.user, message.proof = identity.prove(redis, identity.request_body(message))
    if message.user:
        forward.enqueue(redis if queues is None else queues, message)
    else:
        inbox.send(redis, message)
    if not manager_running(redis):
        raise Queued(NO_MANAGER.format(what="the request waits"))
    answer = redis.blpop([keys.reply(message.reply_to, message.user)], timeout=timeout)
    if answer is None:
        where = "the ingest queue (is `jobjournal worker` running?) or the inbox" if message.user else "its inbox"
        raise RequestFailed(f"the manager did not answer within {timeout:g}s; the request is in {where} and may "
                            "still take effect")
    reply = messages.decode_reply(answer[1])
    if reply.error:
        raise RequestFailed(reply.error)
    return reply


def manager_running(redis) -> bool:
    """Whether a manager holds the lease (True when this client may not read it: it cannot tell)."""
    try:
        return bool(redis.exists(keys.manager_lease()))
    except redis_lib.exceptions.NoPermissionError:
        return True


def cancel(redis, job_ids: list[int], note: str = "", userid: int | None = None, timeout=DEFAULT_TIMEOUT,
           queues=None):
    """Cancel jobs (messages.MAX_IDS a request); returns {job id: error} for those that could not be canceled."""
    _check_note(note)
    errors: dict[int, str] = {}
    for ids in _in_requests(job_ids):
        errors |= _errors(request(redis, messages.Cancel(ids=ids, userid=_uid(userid), note=note), timeout, queues))
    return errors


def set_urgency(redis, job_id: int, urgency: int, userid: int | None = None, timeout=DEFAULT_TIMEOUT, queues=None):
    if not 0 <= urgency <= 31:
        raise RequestFailed(f"urgency {urgency} is out of range 0-31")
    message = messages.SetUrgency(id=job_id, urgency=urgency, userid=_uid(userid))
    return _errors(request(redis, message, timeout, queues))


def raise_exception(
    redis, job_ids: list[int], type: str, severity: int = 0, note: str = "", userid=None, timeout=DEFAULT_TIMEOUT,
    queues=None,
):
    if not type or any(char.isspace() for char in type) or len(type) > 64:
        raise RequestFailed(f"exception type {type[:70]!r} must be one word of at most 64 characters")
    if not 0 <= severity <= 7:
        raise RequestFailed(f"severity {severity} is out of range 0-7")
    _check_note(note)
    errors: dict[int, str] = {}
    for ids in _in_requests(job_ids):
        message = messages.RaiseException(ids=ids, userid=_uid(userid), type=type, severity=severity, note=note)
        errors |= _errors(request(redis, message, timeout, queues))
    return errors


def purge(redis, job_ids=(), age_limit=None, num_limit=None, force=False, timeout=DEFAULT_TIMEOUT, queues=None):
    """Purge inactive jobs; returns (errors by id, {"purged": n, "would_purge": n}). More than
    messages.MAX_IDS ids go in several requests (their counts added up; `inactive` is the last one's)."""
    if not job_ids:
        reply = request(redis, messages.Purge(age_limit=age_limit, num_limit=num_limit, force=force), timeout,
                        queues)
        return _errors(reply), reply.data
    errors: dict[int, str] = {}
    counts: dict = {}
    for ids in _in_requests(list(job_ids)):
        message = messages.Purge(ids=ids, age_limit=age_limit, num_limit=num_limit, force=force)
        reply = request(redis, message, timeout, queues)
        errors |= _errors(reply)
        data = reply.data or {}
        counts = {**data, **{key: counts.get(key, 0) + data.get(key, 0) for key in ("purged", "would_purge")}}
    return errors, counts


def eventlog(redis, job_id: int) -> list[ev.AnyEvent]:
    entries = redis.xrange(read_layout(redis).partition_of(job_id).job_eventlog(job_id))
    if not entries:
        raise NoSuchJob(f"no such job: {f58(job_id)}")
    return [ev.decode_entry(fields) for _, fields in entries]


def redacted_jobspec(redis, job_id: int) -> dict | None:
    """The job's jobspec as its submit entry keeps it (no environment), or None when this client
    may not read eventlogs (a reader role) or the job has none."""
    return attachments(redis, job_id, count=1)[0]


def attachments(redis, job_id: int, count: int | None = None) -> tuple[dict | None, dict | None]:
    """(redacted jobspec, R) as the job's eventlog carries them (its first `count` entries; all by
    default), each None if absent or when this client may not read eventlogs (a reader role)."""
    key = read_layout(redis).partition_of(job_id).job_eventlog(job_id)
    try:
        entries = redis.xrange(key, count=count)
    except redis_lib.exceptions.NoPermissionError:
        return None, None
    jobspec, r = ev.eventlog_attachments(fields for _, fields in entries)
    return (json.loads(jobspec) if jobspec else None), (json.loads(r) if r else None)


def follow_eventlog(redis, job_id: int, timeout: float | None = None) -> Iterator[ev.AnyEvent]:
    """Yield a job's events as they are posted, until the job is inactive (clean); StillActive
    once `timeout` seconds have passed in all without that."""
    appear_s = APPEAR_S if timeout is None else min(APPEAR_S, timeout)
    deadline = None if timeout is None else time.monotonic() + timeout
    key = _eventlog_key(redis, read_layout(redis), job_id, wait_s=appear_s)
    cursor = "0-0"
    while True:
        left = None if deadline is None else deadline - time.monotonic()
        response = redis.xread({key: cursor}, block=1000 if left is None else max(1, int(left * 1000)))
        if not response:
            if deadline is not None and time.monotonic() >= deadline:
                raise StillActive(f"job {f58(job_id)} did not become inactive within {timeout:g}s")
            if not redis.exists(key):
                return  # purged meanwhile
            continue
        for entry_id, fields in response[0][1]:
            cursor = entry_id
            event = ev.decode_entry(fields)
            yield event
            if isinstance(event, ev.Clean | ev.Invalidate):
                return


def job_output(redis, job_id: int, follow: bool = False, block_ms: int = 1000) -> Iterator[output.Chunk | output.End]:
    """A job's captured output, chunk by chunk; with `follow`, as it comes, until its end (or until
    the job is inactive without one: it never ran)."""
    layout = read_layout(redis)
    eventlog_key = _eventlog_key(redis, layout, job_id, wait_s=APPEAR_S if follow else 0)
    after = "0"
    while True:
        found, after = output.read(redis, layout, job_id, after, block_ms if follow else None)
        yield from found
        if any(isinstance(entry, output.End) for entry in found):
            return
        if not follow:
            if not found:
                return
            continue  # more than one read's worth
        if not found and _inactive(redis, eventlog_key):  # what came before it ended, then stop
            yield from output.read(redis, layout, job_id, after)[0]
            return


APPEAR_S = 10.0
"""How long a follower waits for the eventlog of a job just submitted (the manager posts it soon
after the ingest worker answered the submitter)."""


def _eventlog_key(redis, layout, job_id: int, wait_s: float) -> str:
    """The job's eventlog key, once it exists (waiting up to wait_s); NoSuchJob after that."""
    key = layout.partition_of(job_id).job_eventlog(job_id)
    deadline = time.monotonic() + wait_s
    while not redis.exists(key):
        if time.monotonic() >= deadline:
            raise NoSuchJob(f"no such job: {f58(job_id)}")
        time.sleep(0.05)
    return key


def _inactive(redis, eventlog_key: str) -> bool:
    last = redis.xrevrange(eventlog_key, count=1)
    return not last or last[0][1].get(b"name") == b"clean"


def _uid(userid: int | None) -> int:
    return os.getuid() if userid is None else userid


def _in_requests(job_ids: list[int]) -> list[list[int]]:
    """The ids in lists of at most messages.MAX_IDS, one per request."""
    return [job_ids[start : start + messages.MAX_IDS] for start in range(0, len(job_ids), messages.MAX_IDS)]


def _check_note(note: str) -> None:
    if len(note) > messages.MAX_NOTE:
        raise RequestFailed(f"a note of {len(note):,} characters: the limit is {messages.MAX_NOTE:,}")


def _errors(reply: messages.Reply) -> dict[int, str]:
    return {int(job_id): error for job_id, error in reply.errors.items()}


def _last_line(text: str | None) -> str:
    lines = [line for line in (text or "").strip().splitlines() if line.strip()]
    return lines[-1] if lines else "unknown error"
