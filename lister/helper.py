"""A rebuild helper's side: the task it is given, what it reports, and its whole work.

A helper derives the reply entries it claims (lister/claiming_reader.py) into the new
generation itself, then reports its tally (a JSON `Report`) for the worker's stats. It runs
forked from the lister worker, or as `python -m jobjournal.lister.helper` with the task as JSON on
its stdin and the report on its stdout (lister/helper_processes.py starts it).
"""

from __future__ import annotations

import logging
import os
import sys

import msgspec

from jobjournal.common.connection import connect
from jobjournal.common.keys import Partition
from jobjournal.common.settings import Settings
from jobjournal.lister.claiming_reader import ClaimingReader
from jobjournal.lister.derive import derive_all
from jobjournal.lister.view import BulkWriter

log = logging.getLogger("jobjournal.lister")


class Task(msgspec.Struct, frozen=True):
    """What a helper is asked (on its stdin)."""

    settings: Settings
    part: Partition
    consumer: str
    generation: int
    worker: int
    """The worker's pid: a helper whose parent is no longer this process stops."""
    lease_token: str
    """The worker's lister lease token: a helper's chunks are written only while it holds."""


class Report(msgspec.Struct, frozen=True):
    """What a helper did (on its stdout): jobs written, and their (state, queue, result, count)."""

    jobs: int
    tally: list[tuple[str, str, str | None, int]]
    skipped: int = 0


def run_helper(task: Task) -> Report:
    """A helper's whole work: derive the claimed entries into the generation until the sentinel."""
    redis = connect(task.settings, start=False)
    try:
        writer = BulkWriter(redis, task.part, task.generation, task.lease_token)
        with writer, ClaimingReader(redis, task.part, task.consumer) as reader:
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
