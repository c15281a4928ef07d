"""A job's output: its stdout and stderr as the executor captured them, in a stream of the store.

Stream `Partition.job_output(id)` (docs/redis-layout.md), one entry per chunk read from the
command: `v` (format version), `stream` (`stdout` or `stderr`) and `data` (the bytes as read).
The last entry has `eof` = 1 and `dropped` = the bytes left out past the cap (setting
`output_max_bytes`). Purge deletes the stream with the job.
"""

from __future__ import annotations

import msgspec

from jobjournal.common.layout import Layout

VERSION = b"1"


class Chunk(msgspec.Struct, frozen=True):
    stream: str
    data: bytes


class End(msgspec.Struct, frozen=True):
    dropped: int = 0


def decode_entry(fields: dict[bytes, bytes]) -> Chunk | End | None:
    """A stored entry's content; None for one of another format (left alone)."""
    if fields.get(b"eof") == b"1":
        return End(int(fields.get(b"dropped", b"0") or 0))
    stream = fields.get(b"stream")
    if stream not in (b"stdout", b"stderr") or b"data" not in fields:
        return None
    return Chunk(stream.decode(), fields[b"data"])


class Capture:
    """What one job's command wrote, kept until `flush` stores it: at most `max_bytes` in all."""

    def __init__(self, key: str, max_bytes: int):
        self.key = key
        self.room = max_bytes
        self.dropped = 0
        self._pending: list[Chunk] = []

    def add(self, stream: str, data: bytes) -> None:
        kept = data[: max(self.room, 0)]
        self.room -= len(kept)
        self.dropped += len(data) - len(kept)
        if kept:
            self._pending.append(Chunk(stream, kept))

    def flush(self, pipe) -> None:
        """Queue the chunks read since the last flush on `pipe` (a pipeline)."""
        for chunk in self._pending:
            pipe.xadd(self.key, {b"v": VERSION, b"stream": chunk.stream, b"data": chunk.data})
        self._pending = []

    def close(self, pipe) -> None:
        self.flush(pipe)
        pipe.xadd(self.key, {b"v": VERSION, b"eof": b"1", b"dropped": str(self.dropped)})


def read(redis, layout: Layout, job_id: int, after: str = "0", block_ms: int | None = None
         ) -> tuple[list[Chunk | End], str]:
    """Entries after `after` (waiting up to block_ms for one when there are none), and the id to
    read after next."""
    key = layout.partition_of(job_id).job_output(job_id)
    response = redis.xread({key: after}, count=1000, block=block_ms)
    if not response:
        return [], after
    entries = response[0][1]
    found = [decoded for _, fields in entries if (decoded := decode_entry(fields)) is not None]
    last = entries[-1][0]
    return found, last.decode() if isinstance(last, bytes) else last
