"""Live updates as server-sent events (text/event-stream), read from the journal, not by polling jobs.

`/api/v1/events`: one message per batch of journal entries posted after the client connected, on
every partition: `{"events": [{"id": <job id>, "f58": <its text>, "name": <event>, "partition": <index>}, ...]}`; a
`resync` event when the journal was trimmed past the stream's place (read the list again).
`/api/v1/jobs/<ID>/events?after=<entry id>`: the job's eventlog entries after `after` (all by
default), one message each (`{"entry", "name", "timestamp", "context"}`), until the job is inactive.

Redis reads block (up to BLOCK_MS) in a worker thread; between reads a comment line goes out, so a
client that left is noticed within BLOCK_MS.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator

import anyio
from starlette.requests import Request
from starlette.responses import StreamingResponse

from jobjournal.common import events as ev
from jobjournal.common.errors import CorruptEntry, NoSuchJob
from jobjournal.common.ids import f58
from jobjournal.common.journal import JournalGap, journal_head, read_journals, text
from jobjournal.lister.errors import QueryError

BLOCK_MS = 1000
BATCH = 1000
SSE = "text/event-stream"
STREAM_ID = re.compile(r"[0-9]{1,20}(-[0-9]{1,20})?")


def message(data: dict, event: str | None = None) -> str:
    """One server-sent event."""
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {json.dumps(data)}\n\n"


def journal_stream(request: Request) -> StreamingResponse:
    state = request.app.state
    return StreamingResponse(_journal_messages(request, state.redis, state.layout), media_type=SSE,
                             headers={"Cache-Control": "no-cache"})


async def _journal_messages(request: Request, redis, layout) -> AsyncIterator[str]:
    parts = {part.index: part for part in layout.partitions}
    positions = await anyio.to_thread.run_sync(_heads, redis, layout)
    yield "retry: 1000\n\n"
    while not await request.is_disconnected():
        try:
            entries = await anyio.to_thread.run_sync(read_journals, redis, positions, BATCH, BLOCK_MS)
        except JournalGap:
            positions = await anyio.to_thread.run_sync(_heads, redis, layout)
            yield message({}, "resync")
            continue
        if not entries:
            yield ": idle\n\n"
            continue
        for entry in entries:
            positions[parts[entry.partition]] = (entry.entry_id, entry.seq)
        shown = [{"id": entry.job_id, "f58": f58(entry.job_id), "name": entry.name, "partition": entry.partition}
                 for entry in entries if not entry.problem]
        yield message({"events": shown})


def _heads(redis, layout) -> dict:
    return {part: journal_head(redis, part) for part in layout.partitions}


def job_stream(request: Request, job_id: int) -> StreamingResponse:
    """The job's events after `after`; QueryError for an `after` that is no stream id, NoSuchJob
    for a job without an eventlog."""
    state = request.app.state
    key = state.layout.partition_of(job_id).job_eventlog(job_id)
    after = request.query_params.get("after", "0-0")
    if not STREAM_ID.fullmatch(after):
        raise QueryError(f"after must be an entry id like 1700000000000-0, not {after!r}")
    if not state.redis.exists(key):
        raise NoSuchJob(f"no such job: {f58(job_id)}")
    return StreamingResponse(_job_messages(request, state.redis, key, after), media_type=SSE,
                             headers={"Cache-Control": "no-cache"})


async def _job_messages(request: Request, redis, key: str, after: str) -> AsyncIterator[str]:
    yield "retry: 1000\n\n"
    while not await request.is_disconnected():
        response = await anyio.to_thread.run_sync(_read_after, redis, key, after)
        if not response:
            yield ": idle\n\n"
            continue
        for entry_id, fields in response[0][1]:
            after = text(entry_id)
            try:
                event = ev.decode_entry(fields)
            except CorruptEntry:
                continue  # shown as nothing; `jobjournal job eventlog` says what it is
            yield message({"entry": after, "name": ev.event_name(event), "timestamp": event.timestamp,
                           "context": json.loads(ev.event_context(event))})
            if isinstance(event, ev.Clean | ev.Invalidate):
                return


def _read_after(redis, key: str, after: str):
    return redis.xread({key: after}, count=BATCH, block=BLOCK_MS)
