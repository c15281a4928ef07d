"""Live updates as server-sent events (text/event-stream), from the journal, not by polling jobs.

`/api/v1/events`: one message per batch of journal entries posted after the client connected, on
every partition: `{"events": [{"id": <job id>, "f58": <its text>, "name": <event>, "partition": <index>}, ...]}`; a
`resync` event when the stream lost its place (the journal was trimmed past it, or the client did
not keep up): read the list again.
`/api/v1/jobs/<ID>/events?after=<entry id>`: the job's eventlog entries after `after` (or after the
Last-Event-ID a reconnecting browser sends; all by default), one message each (`{"entry", "name",
"timestamp", "context"}`, its SSE id the entry's), until the job is inactive.

Every stream of a server is fed by one reader of the journals (jobjournal/web/fanout.py); a job's
stream reads the job's eventlog (without waiting) when the journal says it has new entries.
Between messages a comment line goes out every IDLE_S, so a client that left is noticed.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator

import anyio
from starlette.requests import Request
from starlette.responses import StreamingResponse

from jobjournal.common import events as ev
from jobjournal.common.errors import CorruptEntry, NoSuchJob
from jobjournal.common.ids import f58
from jobjournal.common.journal import text
from jobjournal.lister.errors import QueryError
from jobjournal.web.fanout import RESYNC, JournalFanout, Subscriber

IDLE_S = 1.0
IDLE, GONE = object(), object()
"""What `_next` says when nothing came for IDLE_S, and once the client left."""
BATCH = 1000
SSE = "text/event-stream"
STREAM_ID = re.compile(r"[0-9]{1,20}(-[0-9]{1,20})?")


def message(data: dict, event: str | None = None, entry_id: str | None = None) -> str:
    """One server-sent event (with `entry_id`, its id: a browser that reconnects sends it back as
    Last-Event-ID, and the stream goes on after it)."""
    head = (f"event: {event}\n" if event else "") + (f"id: {entry_id}\n" if entry_id else "")
    return f"{head}data: {json.dumps(data)}\n\n"


async def journal_stream(request: Request) -> StreamingResponse:
    subscriber = await _subscribe(request, None)  # before the answer starts: nothing posted after it is missed
    return _Stream(request, subscriber, _journal_messages(request, subscriber))


async def job_stream(request: Request, job_id: int) -> StreamingResponse:
    """The job's events after `after`; QueryError for an `after` that is no stream id, NoSuchJob
    for a job without an eventlog."""
    state = request.app.state
    key = state.layout.partition_of(job_id).job_eventlog(job_id)
    after = request.query_params.get("after") or request.headers.get("last-event-id") or "0-0"
    if not STREAM_ID.fullmatch(after):
        raise QueryError(f"after must be an entry id like 1700000000000-0, not {after!r}")
    if not await anyio.to_thread.run_sync(state.redis.exists, key):
        raise NoSuchJob(f"no such job: {f58(job_id)}")
    subscriber = await _subscribe(request, job_id)
    return _Stream(request, subscriber, _job_messages(request, subscriber, key, after))


class _Stream(StreamingResponse):
    """An event stream that unsubscribes when the answer ends, however it ends (even when the
    client left before its first message, and the messages were never asked for)."""

    def __init__(self, request: Request, subscriber: Subscriber, messages: AsyncIterator[str]):
        super().__init__(messages, media_type=SSE, headers={"Cache-Control": "no-cache"})
        self._fanout, self._subscriber = request.app.state.fanout, subscriber

    async def __call__(self, scope, receive, send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._fanout.unsubscribe(self._subscriber)


async def _subscribe(request: Request, job_id: int | None) -> Subscriber:
    fanout: JournalFanout = request.app.state.fanout
    return await anyio.to_thread.run_sync(fanout.subscribe, asyncio.get_running_loop(), job_id)


async def _next(request: Request, subscriber: Subscriber):
    """The subscriber's next item (news, or RESYNC); IDLE after IDLE_S with none; GONE once the
    client left."""
    while not await request.is_disconnected():
        try:
            return await asyncio.wait_for(subscriber.queue.get(), IDLE_S)
        except TimeoutError:
            return IDLE
    return GONE


async def _journal_messages(request: Request, subscriber: Subscriber) -> AsyncIterator[str]:
    yield "retry: 1000\n\n"
    while (item := await _next(request, subscriber)) is not GONE:
        if item is IDLE:
            yield ": idle\n\n"
        elif item is RESYNC:
            yield message({}, "resync")
        else:
            yield message({"events": [{"id": job_id, "f58": f58(job_id), "name": name, "partition": partition}
                                      for job_id, name, partition in item]})


async def _job_messages(request: Request, subscriber: Subscriber, key: str, after: str) -> AsyncIterator[str]:
    """The eventlog after `after`, then again each time there is news of the job (or a resync:
    its eventlog is read after the last entry sent, so nothing is lost or sent twice)."""
    redis = request.app.state.redis
    yield "retry: 1000\n\n"
    item = RESYNC
    while item is not GONE:
        if item is IDLE:
            yield ": idle\n\n"
        else:
            for entry_id, event in await anyio.to_thread.run_sync(_read_after, redis, key, after):
                after = entry_id
                yield message({"entry": entry_id, "name": ev.event_name(event), "timestamp": event.timestamp,
                               "context": json.loads(ev.event_context(event))}, entry_id=entry_id)
                if isinstance(event, ev.Clean | ev.Invalidate):
                    return
        item = await _next(request, subscriber)


def _read_after(redis, key: str, after: str) -> list[tuple[str, ev.AnyEvent]]:
    """The eventlog's entries after `after`, decoded (one that does not decode is shown as nothing:
    `jobjournal job eventlog` says what it is)."""
    out, chunk = [], [None] * BATCH
    while len(chunk) == BATCH:
        chunk = redis.xrange(key, f"({after}", "+", count=BATCH)
        for entry_id, fields in chunk:
            after = text(entry_id)
            try:
                out.append((after, ev.decode_entry(fields)))
            except CorruptEntry:
                continue
    return out
