"""A person's request to the manager, through an ingest worker.

With ACLs (JOBJOURNAL_IDENTITY=acl) people may not write the manager's inbox: a write on a stream
is also XTRIM and XDEL, so anyone could drop the requests not yet read, acknowledged submissions
among them. A person's client enqueues its request as an rq task instead (`tasks.FORWARD`), and an
ingest worker writes it to the inbox. The worker checks only that it is a request a person may
send (not a submission, a full-journal request or an executor's report) and not too long; the
manager checks its proof, as for any request.
"""

from __future__ import annotations

from typing import NamedTuple

from jobjournal.common import inbox, messages, tasks
from jobjournal.common.errors import CorruptEntry

FORWARDED = (messages.Cancel, messages.SetUrgency, messages.RaiseException, messages.Purge)
MAX_BYTES = 1 << 20
"""The longest request forwarded (10,000 ids and a note take about 250 KB)."""


class Forward(NamedTuple):
    """A forward task's arguments (those of `forward`)."""

    message: str


def enqueue(queues, message: messages.Request) -> None:
    """The client's side: `message` as a forward task on rq's Redis (`queues`). Its arguments hold
    ids, a note and a proof: nothing secret; the reply comes from the manager, not from rq."""
    tasks.ingest_queue(queues).enqueue(tasks.FORWARD, messages.encode(message).decode(), result_ttl=60,
                                       failure_ttl=3600, description=f"forward a {message.__struct_config__.tag}")


def forward(message: str) -> dict:
    """rq entry point (a plain rq worker's): {"sent": True} or {"error": why}."""
    from rq import get_current_job

    from jobjournal.manager.task_tools import task_tools

    [reply] = sent(task_tools(get_current_job().connection).store, [message])
    return reply


def sent(store, sent_messages: list[str]) -> list[dict]:
    """Write the requests a person may send to the inbox, in one round trip; each one's reply:
    {"sent": True}, or {"error": why} (that one not written)."""
    checked = [_checked(message) for message in sent_messages]
    with store.pipeline(transaction=False) as pipe:
        for request in checked:
            if not isinstance(request, dict):
                inbox.send(pipe, request)
        pipe.execute()
    return [request if isinstance(request, dict) else {"sent": True} for request in checked]


def _checked(message: str) -> messages.Request | dict:
    """The request, if a person may send it; else {"error": why}."""
    data = message.encode()
    if len(data) > MAX_BYTES:
        return {"error": f"a request of {len(data):,} bytes: the limit is {MAX_BYTES:,}"}
    try:
        request = messages.decode_request(data)
    except CorruptEntry as err:
        return {"error": str(err)}
    if not isinstance(request, FORWARDED):
        return {"error": f"a {request.__struct_config__.tag} request is not a person's to send"}
    return request
