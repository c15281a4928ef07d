"""A big rebuild shared by processes: each reads the whole reply and derives the entries it claims.

Deriving views is the slow part of a rebuild and Python runs it on one core, so for a big
backlog the lister worker starts helper processes (`python -m lister.split`, settings
`rebuild_processes`). Every reader (the worker and its helpers) reads all entries of the
reply, in order, and derives only those it claims: `INCR` on the reply's claim counter hands
out entry ordinals 1, 2, 3, ... first come, first served, so a reader that started late or
runs slower simply takes fewer. An entry holds about a hundred jobs, so a claim is a round
trip per hundred jobs, asked one ahead. The sentinel ends every reader. A helper writes its jobs
into the new generation itself, then prints its tally (a JSON `Report`) for the worker's stats.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time

import msgspec

from common import journal as jr
from common import keys
from common.connection import connect, redis_url
from common.deadletters import set_aside
from common.packed import Pending, pack
from common.settings import Settings
from lister.model import view_from_events
from lister.view import BulkWriter

log = logging.getLogger("jobjournal.lister")

SPLIT_FROM_JOBS = 20_000
"""Backlogs this big are shared with helpers; smaller ones are not worth starting a process."""
HELPER_COMMAND = [sys.executable, "-m", "lister.split"]
STALL_S = 15.0
CLAIMS_TTL = 3600


class Task(msgspec.Struct, frozen=True):
    """What a helper is asked (on its stdin)."""

    settings: Settings
    consumer: str
    generation: int


class Report(msgspec.Struct, frozen=True):
    """What a helper did (on its stdout): jobs written, and their (state, queue, result, count)."""

    jobs: int
    tally: list[tuple[str, str, str | None, int]]


class Claims:
    """Entry ordinals this reader takes, handed out by INCR; the next claim is asked ahead."""

    def __init__(self, redis, consumer: str):
        key = keys.journal_reply_claims(consumer)
        self._incr = pack(("INCR", key))
        self._pending = Pending(redis)
        self._pending.send([self._incr, pack(("EXPIRE", key, CLAIMS_TTL))])

    def take(self) -> int:
        """The next ordinal this reader owns."""
        replies = self._pending.replies()
        self._pending.send([self._incr])
        return replies[0]

    def close(self) -> None:
        self._pending.close()


class ClaimedReader:
    """Reads a whole reply; gives the items of the entries this reader claims, and the
    sentinel. Alone (`shared` False), it claims every entry. Use it with `with`."""

    def __init__(self, redis, consumer: str, shared: bool, block_ms: int = 500):
        self.read = 0
        """Entries read so far, claimed or not."""
        self._reader = jr.ReplyReader(redis, consumer, block_ms=block_ms)
        self._claims = Claims(redis, consumer) if shared else None
        self._claimed = self._claims.take() if self._claims else 1

    def next_batch(self) -> list[jr.BacklogJob | jr.Sentinel | jr.Unreadable]:
        mine = []
        for entry in self._reader.next_entries():
            self.read += 1
            if self._claims is None or jr.is_sentinel(entry[1]):
                mine.append(entry)
            elif self.read == self._claimed:
                mine.append(entry)
                self._claimed = self._claims.take()
        return jr.decode_reply(mine)

    def __enter__(self) -> ClaimedReader:
        return self

    def __exit__(self, *exc) -> None:
        try:
            self._reader.__exit__(*exc)
        finally:
            if self._claims:
                self._claims.close()


def derive_into(writer: BulkWriter, items, redis, consumer: str) -> jr.Sentinel | None:
    """Write the jobs among `items` into `writer`; the sentinel, if it is among them."""
    for item in items:
        if isinstance(item, jr.Sentinel):
            return item
        if isinstance(item, jr.Unreadable):
            set_aside(redis, keys.journal_reply(consumer), item.entry_id, item.problem)
            continue
        writer.add(view_from_events(item.job_id, item.events, item.jobspec, item.R))
    return None


class Helpers:
    """The helper processes of one rebuild attempt. Closing kills those still running."""

    def __init__(self, settings: Settings, consumer: str, generation: int, count: int):
        own = msgspec.structs.replace(settings, redis_url=redis_url(settings, start=False))
        task = msgspec.json.encode(Task(own, consumer, generation))
        self._procs = [_spawn(task) for _ in range(count)]

    def reports(self, renew, stop) -> list[Report] | None:
        """Wait for every helper's report, renewing the caller's lease; None if one failed
        (or `stop` was set)."""
        reports = []
        for proc in self._procs:
            while proc.poll() is None and not stop.is_set():
                renew()
                time.sleep(0.002)
            if stop.is_set():
                return None
            if proc.returncode != 0:
                log.error("rebuild helper %d failed (exit %d; its log is above)", proc.pid, proc.returncode)
                return None
            try:
                reports.append(msgspec.json.decode(proc.stdout.read(), type=Report))
            except msgspec.DecodeError as error:
                log.error("rebuild helper %d sent an unreadable report: %s", proc.pid, error)
                return None
        return reports

    def close(self) -> None:
        for proc in self._procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            proc.stdout.close()

    def __enter__(self) -> Helpers:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _spawn(task: bytes) -> subprocess.Popen:
    """A helper, given its task; it logs to the worker's stderr and reports on stdout (a few
    bytes, read once it has exited)."""
    proc = subprocess.Popen(HELPER_COMMAND, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    proc.stdin.write(task)
    proc.stdin.close()
    return proc


def run_helper(task: Task) -> Report:
    """A helper's whole work: derive the claimed entries into the generation until the sentinel."""
    redis = connect(task.settings, start=False)
    try:
        with BulkWriter(redis, task.generation) as writer, ClaimedReader(redis, task.consumer, shared=True) as reader:
            _help(reader, writer, redis, task.consumer)
            writer.flush()
        return Report(writer.jobs, writer.tally())
    finally:
        redis.close()


def _help(reader: ClaimedReader, writer: BulkWriter, redis, consumer: str) -> None:
    parent = os.getppid()
    read, progress = 0, time.monotonic()
    while derive_into(writer, reader.next_batch(), redis, consumer) is None:
        if reader.read > read:
            read, progress = reader.read, time.monotonic()
        if os.getppid() != parent:
            raise SystemExit("the lister worker is gone")
        if time.monotonic() - progress > STALL_S:
            raise SystemExit("the full journal stalled")


def main() -> None:
    task = msgspec.json.decode(sys.stdin.buffer.read(), type=Task)
    report = run_helper(task)
    sys.stdout.buffer.write(msgspec.json.encode(report))


if __name__ == "__main__":
    main()
