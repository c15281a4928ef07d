"""What the pages and the API show, read from the lister's view and the job's own keys."""

from __future__ import annotations

import msgspec

from jobjournal.common import events as ev
from jobjournal.common import output
from jobjournal.common.layout import Layout
from jobjournal.lister import query as q
from jobjournal.manager import client

OUTPUT_SHOWN = 64 * 1024
"""Bytes of a job's output a page shows (the whole of it: `jobjournal job output`)."""


def job_detail(redis, layout: Layout, job_id: int, timeout: float) -> dict:
    """One job: its attributes, redacted jobspec, R (its resources, once allocated), eventlog and
    (a bounded part of) its output."""
    attributes = q.list_id(redis, job_id, timeout=timeout, layout=layout)
    events = [{"name": ev.event_name(event), "timestamp": event.timestamp, "context": ev.event_context(event)}
              for event in client.eventlog(redis, job_id)]
    jobspec, resources = client.attachments(redis, job_id)
    return {
        "attributes": attributes,
        "jobspec": jobspec,
        "R": resources,
        "eventlog": [{**event, "context": msgspec.json.decode(event["context"])} for event in events],
        "output": _output(redis, job_id),
    }


def _output(redis, job_id: int) -> dict:
    shown, dropped, ended = bytearray(), 0, False
    for piece in client.job_output(redis, job_id):
        match piece:
            case output.Chunk(data=data):
                taken = data[: OUTPUT_SHOWN - len(shown)]
                shown += taken
                dropped += len(data) - len(taken)
            case output.End(dropped=lost):
                dropped, ended = dropped + lost, True
    return {"text": shown.decode(errors="replace"), "dropped": dropped, "ended": ended}
