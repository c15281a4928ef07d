"""`jobjournal jobs --watch` as a user meets it (a real process, on a pseudo-terminal or a pipe, on the
test Redis with a manager and a lister running), and the CLI's progress bars."""

from __future__ import annotations

import contextlib
import fcntl
import itertools
import os
import pty
import re
import signal
import struct
import subprocess
import sys
import termios
import time

from jobjournal import watch
from jobjournal.common import keys
from jobjournal.common.ids import f58
from jobjournal.common.journal import JournalGap
from jobjournal.common.keys import LEGACY
from jobjournal.common.layout import read_layout
from jobjournal.lister.query import ListQuery
from jobjournal.manager import client
from tests.conftest import ROOT
from tests.helpers import DEADLINE, process_log, submit, wait_for, wait_inactive

ESCAPES = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07|\r")
WATCHED = ("jobs", "--watch", "-A", "-a", "-o", "{id.f58} {name} {state}")


class Terminal:
    """A pseudo-terminal (50 rows of 160 columns) for one process: everything it wrote so far, read
    without blocking, with the escape sequences (colours, cursor moves) taken out."""

    def __init__(self, rows: int = 50, columns: int = 160):
        self.master, self.slave = pty.openpty()
        fcntl.ioctl(self.slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
        os.set_blocking(self.master, False)
        self.written = b""

    def text(self) -> str:
        with contextlib.suppress(BlockingIOError, OSError):  # OSError (EIO): the process's side is closed
            while chunk := os.read(self.master, 65536):
                self.written += chunk
        return ESCAPES.sub("", self.written.decode(errors="replace"))

    def close(self) -> None:
        for fd in (self.master, self.slave):
            with contextlib.suppress(OSError):
                os.close(fd)


@contextlib.contextmanager
def on_a_terminal(redis_url: str, tmp_path, *args: str):
    """`jobjournal ARGS` running with a pseudo-terminal for stdin, stdout and stderr: (process, terminal);
    killed after, if it still runs."""
    terminal = Terminal()
    env = {**{name: value for name, value in os.environ.items() if name not in ("COLUMNS", "LINES", "NO_COLOR")},
           "JOBJOURNAL_REDIS_URL": redis_url, "JOBJOURNAL_HOME": str(tmp_path), "JOBJOURNAL_LEASE_TTL": "1",
           "TERM": "xterm-256color"}
    proc = subprocess.Popen([sys.executable, "-m", "jobjournal", *args], stdin=terminal.slave, stdout=terminal.slave,
                            stderr=terminal.slave, env=env, cwd=ROOT, start_new_session=True)
    os.close(terminal.slave)
    try:
        yield proc, terminal
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
        terminal.close()


def ended(proc, terminal: Terminal) -> int:
    """The process's exit status, once it has exited (reading its terminal meanwhile, so it never blocks)."""
    wait_for(lambda: terminal.text() is not None and proc.poll() is not None, what="the process to exit")
    terminal.text()
    return proc.returncode


def test_watch_on_a_terminal_shows_a_job_appear_and_change_state_and_ends_cleanly_on_ctrl_c(
        redis, redis_url, tmp_path, start_manager, start_lister):
    start_manager()
    start_lister()
    with on_a_terminal(redis_url, tmp_path, *WATCHED) as (proc, terminal):
        wait_for(lambda: "JOBID" in terminal.text(), what="the first table")
        [job_id] = submit(redis, name="held", urgency=0, sim={"runtime": 600, "exit_code": 0})
        wait_for(lambda: re.search(rf"{f58(job_id)} +held +SCHED", terminal.text()), what="the job, pending")
        client.set_urgency(redis, job_id, 16, userid=1000)
        wait_for(lambda: re.search(rf"{f58(job_id)} +held +RUN", terminal.text()), what="the job, running")
        assert proc.poll() is None, "the watch ended by itself"
        os.kill(proc.pid, signal.SIGINT)
        assert ended(proc, terminal) == 0
    assert "Traceback" not in terminal.text() and "Aborted" not in terminal.text()


def test_watch_without_a_terminal_prints_a_new_table_each_time_the_listing_changes(
        redis, spawn, start_manager, start_lister):
    start_manager()
    start_lister()
    proc = spawn(*WATCHED)
    wait_for(lambda: "JOBID" in process_log(proc), what="the first table")
    [job_id] = submit(redis, name="quick", sim={"runtime": 0, "exit_code": 0})
    wait_inactive(redis, [job_id])
    wait_for(lambda: re.search(rf"{f58(job_id)} +quick +INACTIVE", process_log(proc)), what="the job, inactive")
    printed = process_log(proc)
    tables = [table for table in printed.split("\n\n") if "JOBID" in table]
    assert len(tables) >= 2 and f58(job_id) not in tables[0]
    assert len(set(tables)) == len(tables), "a table was printed again though nothing had changed"
    assert "\x1b[" not in printed, "escape sequences went to a file"
    os.kill(proc.pid, signal.SIGINT)
    assert proc.wait(DEADLINE) == 0
    assert "Traceback" not in process_log(proc)


def test_watch_with_a_malformed_constraint_says_why_in_one_line_and_exits_nonzero(redis, cli):
    result = cli("jobs", "--watch", "--constraint", "{not json")
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert result.exit_code == 2 and len(errors) == 1 and "--constraint" in errors[0]
    assert "Traceback" not in result.output


def test_watch_refuses_json_and_stats_which_print_no_table(redis, cli):
    for other in ("--json", "--json-document", "--stats"):
        result = cli("jobs", "--watch", other)
        assert result.exit_code == 2 and "--watch shows a table" in result.output


def test_a_gap_in_the_journal_makes_the_watch_list_again_from_the_heads(redis, monkeypatch):
    reads = itertools.chain([JournalGap("trimmed")], itertools.repeat([]))
    waits, heads_read, listed = [], [], []

    def read_journals(redis, positions, count, block_ms):  # as XREAD BLOCK: nothing came within block_ms
        waits.append(block_ms)
        found = next(reads)
        if isinstance(found, Exception):
            raise found
        time.sleep(block_ms / 1000)
        return found

    monkeypatch.setattr(watch, "read_journals", read_journals)
    monkeypatch.setattr(watch, "heads", lambda redis, layout: heads_read.append(1) or {})
    monkeypatch.setattr(watch, "list_now", lambda *args: listed.append(1) or watch.Listing(rows=[], stats={}))
    listings = watch.listings_of(redis, watch.WatchSpec(layout=read_layout(redis), query=ListQuery(), template="{id}"))
    assert next(listings) is not None and next(listings) is not None
    assert (len(listed), len(heads_read)) == (2, 2)
    assert waits[1:] == [round(watch.REFRESH_S * 1000)] * len(waits[1:]), "a listing due waited the full block"


def test_a_query_waiting_for_the_first_view_shows_the_build_s_progress_on_a_terminal(
        redis, redis_url, tmp_path, start_manager, start_lister):
    start_manager()
    job_ids = submit(redis, count=10, sim={"runtime": 0, "exit_code": 0})
    wait_inactive(redis, job_ids)
    # a build under way (3 of the 10 jobs loaded) by a lister that is registered but stopped
    redis.set(LEGACY.view_generation_counter(), 1)
    redis.hset(LEGACY.view_building(), mapping={"generation": 1, "jobs": 3, "started": time.time()})
    redis.zadd(keys.lister_members(), {"stopped-lister": time.time()})
    with on_a_terminal(redis_url, tmp_path, "jobs", "-A", "-a", "-o", "{id.f58}") as (proc, terminal):
        wait_for(lambda: re.search(r"building the job view.* 3/10 ", terminal.text()), what="the bar at 3 of 10")
        redis.zrem(keys.lister_members(), "stopped-lister")
        start_lister(wait=False)  # drops the abandoned build, builds the view, and the query answers
        assert ended(proc, terminal) == 0
        shown = terminal.text()
    assert all(f58(job_id) in shown for job_id in job_ids) and "Traceback" not in shown
