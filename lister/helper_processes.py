"""Starting, watching and stopping the helper processes that share a big rebuild.

Deriving views is the slow part of a rebuild and Python runs it on one core, so for a big
backlog (settings `rebuild_split_from`, `rebuild_processes`) the lister worker starts helper
processes (lister/helper.py): forked when the worker runs a single thread (the `jobjournal
lister` process), `python -m jobjournal.lister.helper` otherwise. Each reports on a pipe; the
build's progress (`jj:view:building` `jobs`) counts the worker's own jobs only.
"""

from __future__ import annotations

import logging
import os
import select
import signal
import subprocess
import sys
import threading
import traceback

import msgspec

from jobjournal.common.connection import redis_url
from jobjournal.common.keys import Partition
from jobjournal.common.settings import Settings
from jobjournal.lister.helper import Report, Task, run_helper

log = logging.getLogger("jobjournal.lister")

HELPER_COMMAND = [sys.executable, "-m", "jobjournal.lister.helper"]


class Helpers:
    """The helper processes of one rebuild attempt. Closing kills those still running."""

    def __init__(self, settings: Settings, part: Partition, consumer: str, generation: int, count: int,
                 lease_token: str):
        own = msgspec.structs.replace(settings, redis_url=redis_url(settings, start=False))
        task = Task(own, part, consumer, generation, os.getpid(), lease_token)
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
        if self._status is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid == 0:
                os.kill(self.pid, signal.SIGKILL)
            else:  # it had ended: reaped now, not a second time below
                self._status = os.waitstatus_to_exitcode(status)
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
    """A helper started as `python -m jobjournal.lister.helper` (when the worker runs several threads): the
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
