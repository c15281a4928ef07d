"""A big rebuild shared by processes, each deriving the reply entries it claims.

Deriving views is the slow part of a rebuild and Python runs it on one core, so for a big
backlog (settings `rebuild_split_from`, `rebuild_processes`) the lister worker starts helper
processes: forked when the worker runs a single thread (the `jobjournal lister` process),
`python -m lister.split` otherwise. Version-2 reply entries are numbered (ids 1-0, 2-0, ...; the sentinel
has the largest id there is). Each reader, the worker and every helper, claims entry numbers
with `INCR` on the reply's claim counter, first come, first served, and fetches just those
entries (`XREAD ... STREAMS reply <n-1>-0`), so a reader that starts late or runs slower simply
takes fewer. A claim past the last entry fetches the sentinel, which ends every reader. Each
entry holds about a hundred jobs; the next claim and fetch are on their way while a reader
derives. A helper writes its jobs into the new generation itself, then reports its tally (a JSON
`Report`, on a pipe) for the worker's stats. The build's progress (`jj:view:building` `jobs`)
counts the worker's own jobs only.
"""

from __future__ import annotations

import collections
import logging
import os
import select
import signal
import subprocess
import sys
import threading
import time
import traceback

import msgspec
from jobjournal.common import journal as jr
from jobjournal.common import keys
from jobjournal.common.connection import connect, redis_url
from jobjournal.common.deadletters import set_aside
from jobjournal.common.packed import Pending, pack
from jobjournal.common.settings import Settings
from jobjournal.lister.errors import SharedRebuildFailed
from jobjournal.lister.model import view_from_events
from jobjournal.lister.view import BulkWriter

log = logging.getLogger("jobjournal.lister")

HELPER_COMMAND = [sys.executable, "-m", "jobjournal.lister.split"]
STALL_S = 15.0
"""A reply that sends nothing for this long stalled (its manager failed over): give up."""


class Task(msgspec.Struct, frozen=True):
    """What a helper is asked (on its stdin)."""

    settings: Settings
    consumer: str
    generation: int
    worker: int
    """The worker's pid: a helper whose parent is no longer this process stops."""


class Report(msgspec.Struct, frozen=True):
    """What a helper did (on its stdout): jobs written, and their (state, queue, result, count)."""

    jobs: int
    tally: list[tuple[str, str, str | None, int]]
    skipped: int = 0


class ClaimingReader:
    """The reply entries this reader claims, one a batch, then the sentinel. Use it with `with`."""

    def __init__(self, redis, consumer: str, block_ms: int = 500):
        self._key = keys.journal_reply(consumer)
        self._claims = keys.journal_reply_claims(consumer)
        self._block_ms = block_ms
        self._pending = Pending(redis)
        self._pending.send([pack(("INCR", self._claims)), pack(("EXPIRE", self._claims, jr.REPLY_TTL))])
        self._held = collections.deque(self._pending.replies()[:1])
        """Claimed entry numbers not fetched yet, the one being fetched first (at most two)."""
        self._claiming = False
        self._done = False
        self._ask()

    def next_batch(self) -> list[jr.BacklogJob | jr.Sentinel | jr.Unreadable]:
        """The items of the next claimed entry, or the sentinel ([] if the entry was not written
        within block_ms). Meanwhile the next entry is claimed and asked for."""
        replies = self._pending.replies()
        if self._claiming:
            self._held.append(replies[1])
        entries = jr.entries_of(replies[0])
        if entries:
            entry_id, fields = entries[0]
            self._done = jr.is_sentinel(fields)  # claims held past the last entry: none lost
            due = jr.REPLY_SENTINEL_ID if self._done else jr.reply_entry_id(self._held[0])
            if entry_id != due.encode():
                raise SharedRebuildFailed(f"reply entry {entry_id!r} where entry {self._held[0]} was due: "
                                          "the reply is not numbered (a manager older than reply version 2?)")
            self._held.popleft()
        if not self._done:
            self._ask()
        return jr.decode_reply(entries)

    def _ask(self) -> None:
        """Fetch the first entry after <n - 1>-0 (entry n, or the sentinel once n is past the
        last), and claim another unless two are held."""
        after = jr.reply_entry_id(self._held[0] - 1)
        read = ("XREAD", "COUNT", 1, "BLOCK", self._block_ms, "STREAMS", self._key, after)
        self._claiming = len(self._held) < 2
        self._pending.send([pack(read)] + ([pack(("INCR", self._claims))] if self._claiming else []))

    def __enter__(self) -> ClaimingReader:
        return self

    def __exit__(self, *exc) -> None:
        self._pending.close()


def derive_all(reader, writer: BulkWriter, redis, consumer: str, go_on) -> jr.Sentinel | None:
    """Derive what `reader` (a jr.ReplyReader or a ClaimingReader) gives into `writer` until the
    sentinel, which it returns; None if the reply stalled (nothing for STALL_S) or `go_on()`,
    asked before each batch, said no."""
    progress = time.monotonic()
    while go_on():
        items = reader.next_batch()
        sentinel = derive_into(writer, items, redis, consumer)
        if sentinel is not None:
            return sentinel
        if items:
            progress = time.monotonic()
        elif time.monotonic() - progress > STALL_S:
            log.warning("full journal for %s stalled", consumer)
            return None
    return None


def derive_into(writer: BulkWriter, items, redis, consumer: str) -> jr.Sentinel | None:
    """Write the jobs among `items` into `writer`; the sentinel, if it is among them."""
    for item in items:
        if isinstance(item, jr.Sentinel):
            return item
        if isinstance(item, jr.Unreadable):
            set_aside(redis, keys.journal_reply(consumer), item.entry_id, item.problem)
            writer.skipped += 1
            continue
        writer.add(view_from_events(item.job_id, item.events, item.jobspec, item.R))
    return None


class Helpers:
    """The helper processes of one rebuild attempt. Closing kills those still running."""

    def __init__(self, settings: Settings, consumer: str, generation: int, count: int):
        own = msgspec.structs.replace(settings, redis_url=redis_url(settings, start=False))
        task = Task(own, consumer, generation, os.getpid())
        start = _Forked if threading.active_count() == 1 and hasattr(os, "fork") else _Spawned
        self._helpers: list[_Forked | _Spawned] = []
        try:
            for _ in range(count):
                self._helpers.append(start(task))
        except BaseException:
            self.close()
            raise

    def reports(self, renew, stop) -> list[Report] | None:
        """Wait for every helper's report, renewing the caller's lease; None if one failed
        (or `stop` was set). A report is read as it comes (it may not fit in a pipe)."""
        reports = []
        for helper in self._helpers:
            data = _read_until_closed(helper.report_fd, renew, stop)
            if data is None:
                return None
            status = helper.wait()
            if status != 0:
                log.error("rebuild helper %d failed (exit %d; its log is above)", helper.pid, status)
                return None
            try:
                reports.append(msgspec.json.decode(data, type=Report))
            except msgspec.DecodeError as error:
                log.error("rebuild helper %d sent an unreadable report: %s", helper.pid, error)
                return None
        return reports

    def close(self) -> None:
        for helper in self._helpers:
            helper.close()

    def __enter__(self) -> Helpers:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _read_until_closed(fd: int, renew, stop) -> bytes | None:
    """Everything written to `fd` until its writer closes it; None if `stop` is set first."""
    chunks = []
    while not stop.is_set():
        renew()
        if select.select([fd], [], [], 0.05)[0]:
            chunk = os.read(fd, 65536)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)
    return None


class _Forked:
    """A helper forked from the worker: no interpreter to start, nothing to import (only when
    the worker runs a single thread: a fork copies no other thread, nor what it was doing)."""

    def __init__(self, task: Task):
        read, write = os.pipe()
        try:
            self.pid = os.fork()
        except OSError:
            os.close(read)
            os.close(write)
            raise
        if self.pid == 0:
            os.close(read)
            _forked_child(task, write)
        os.close(write)
        self.report_fd = read
        self._status: int | None = None

    def wait(self) -> int:
        if self._status is None:
            self._status = os.waitstatus_to_exitcode(os.waitpid(self.pid, 0)[1])
        return self._status

    def close(self) -> None:
        if self._status is None and os.waitpid(self.pid, os.WNOHANG)[0] == 0:
            os.kill(self.pid, signal.SIGKILL)
        self.wait()
        os.close(self.report_fd)


def _forked_child(task: Task, write: int) -> None:
    """The forked helper's whole life: it never returns into the worker's code."""
    code = 1
    try:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)  # the worker's handlers only set its stop
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        report = msgspec.json.encode(run_helper(task))
        while report:
            report = report[os.write(write, report) :]
        code = 0
    except BaseException:  # noqa: BLE001 - reported on stderr and by the exit status
        traceback.print_exc()
    finally:
        os._exit(code)


class _Spawned:
    """A helper started as `python -m lister.split` (when the worker runs several threads): the
    task on its stdin, its report on its stdout."""

    def __init__(self, task: Task):
        self._proc = subprocess.Popen(HELPER_COMMAND, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self.pid = self._proc.pid
        self.report_fd = self._proc.stdout.fileno()
        try:
            self._proc.stdin.write(msgspec.json.encode(task))
            self._proc.stdin.close()
        except OSError:
            self.close()
            raise

    def wait(self) -> int:
        return self._proc.wait()

    def close(self) -> None:
        if self._proc.poll() is None:
            self._proc.kill()
        self._proc.wait()
        self._proc.stdout.close()


def run_helper(task: Task) -> Report:
    """A helper's whole work: derive the claimed entries into the generation until the sentinel."""
    redis = connect(task.settings, start=False)
    try:
        with BulkWriter(redis, task.generation) as writer, ClaimingReader(redis, task.consumer) as reader:
            if derive_all(reader, writer, redis, task.consumer, go_on=lambda: os.getppid() == task.worker) is None:
                raise SystemExit("the full journal stalled, or the lister worker is gone")
            writer.flush()
        log.info("rebuild helper %d: %d jobs", os.getpid(), writer.jobs)
        return Report(writer.jobs, writer.tally(), writer.skipped)
    finally:
        redis.close()


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    task = msgspec.json.decode(sys.stdin.buffer.read(), type=Task)
    report = run_helper(task)
    sys.stdout.buffer.write(msgspec.json.encode(report))


if __name__ == "__main__":
    main()
