"""A big rebuild is shared with helper processes; the view is the same, and a failing or
abandoned helper neither spoils it nor outlives it."""

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from jobjournal.common import reply_format as rf
from jobjournal.common.keys import LEGACY
from jobjournal.lister import derive, helper_processes
from jobjournal.lister.model import JobView
from jobjournal.lister.view import BulkWriter, delete_generation
from tests.helpers import current_view, naive_view, submit, wait_caught_up, wait_for, wait_inactive


@pytest.fixture
def many_small_entries(redis, start_manager, monkeypatch):
    """300 finished jobs in 60 reply entries (listers start with rebuild_split_from=0, so that
    every backlog is shared, however small)."""
    monkeypatch.setattr(rf, "ENTRY_JOBS", 5)
    start_manager()
    job_ids = submit(redis, 150) + submit(redis, 150, userid=2000, sim={"runtime": 0, "exit_code": 1})
    wait_inactive(redis, job_ids)
    return job_ids


LONG_LEASE = 60.0
"""For a lister whose rebuild the test holds up: it renews its lease only between entries."""


def _claims(redis) -> int:
    """Reply entries claimed so far (the claim counter of the reply being read, if any)."""
    return sum(int(redis.get(key) or 0) for key in redis.scan_iter(match=LEGACY.journal_reply_claims("*")))


def _worker_waits_for_a_helper(monkeypatch) -> None:
    """The worker derives its first entry only once a helper has claimed one: a helper takes part
    however slowly it starts (it is a new Python process)."""
    derive_into = derive.derive_into
    calls = 0

    def after_a_helpers_claim(writer, items, redis, consumer):
        nonlocal calls
        calls += 1
        if calls == 1:
            # before its first entry the worker has claimed three at most (that one, the one on
            # its way, one more): a larger count holds a helper's claim
            counter = LEGACY.journal_reply_claims(consumer)
            deadline = time.monotonic() + 30
            while int(redis.get(counter) or 0) <= 3 and time.monotonic() < deadline:
                time.sleep(0.01)
        return derive_into(writer, items, redis, consumer)

    monkeypatch.setattr(derive, "derive_into", after_a_helpers_claim)


def test_a_helper_process_takes_part_of_a_big_rebuild_and_the_view_is_the_same(
    redis, many_small_entries, start_lister, monkeypatch, caplog
):
    _worker_waits_for_a_helper(monkeypatch)
    caplog.set_level(logging.INFO, logger="jobjournal.lister")
    start_lister(rebuild_processes=2, rebuild_split_from=0, lease_ttl=LONG_LEASE)
    wait_caught_up(redis)
    [built] = [r.getMessage() for r in caplog.records if r.getMessage().startswith("built generation")]
    helped = int(built.split("(")[1].split()[0])
    assert 0 < helped < 300, built
    assert current_view(redis) == naive_view(redis)


def test_a_failing_helper_makes_the_worker_build_again_alone(redis, many_small_entries, start_lister, monkeypatch):
    monkeypatch.setattr(helper_processes, "HELPER_COMMAND", [sys.executable, "-c", "import sys; sys.exit(3)"])
    worker = start_lister(rebuild_processes=2, rebuild_split_from=0)
    wait_caught_up(redis)
    assert worker.helpers.works is False
    assert current_view(redis) == naive_view(redis)


def test_late_writes_of_a_failed_attempts_helper_are_deleted_after_the_switch(
    redis, redis_url, many_small_entries, start_lister, monkeypatch, tmp_path
):
    written = tmp_path / "late-write-done"
    # the helper fails at once, leaving behind a writer that waits until the worker has dropped
    # the attempt (and deleted its keys), then writes into it: a killed helper's last chunk
    late_writer = f"""
import sys, time, redis
from jobjournal.common.keys import LEGACY
generation, r = int(sys.argv[1]), redis.Redis.from_url({redis_url!r})
deadline = time.monotonic() + 40
while r.hget(LEGACY.view_building(), "generation") == str(generation).encode() and time.monotonic() < deadline:
    time.sleep(0.005)
r.sadd(LEGACY.view_users(generation), 9)
r.zadd(LEGACY.view_user_list(generation, 9, "inactive"), {{"1": 1.0}})
open({str(written)!r}, "w").close()
"""
    helper = f"""
import json, subprocess, sys
task = json.load(sys.stdin)
subprocess.Popen([sys.executable, "-c", {late_writer!r}, str(task["generation"])], start_new_session=True,
                 stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
sys.exit(3)
"""
    monkeypatch.setattr(helper_processes, "HELPER_COMMAND", [sys.executable, "-c", helper])
    derive_into = derive.derive_into

    def after_the_late_write(writer, items, redis, consumer):  # the second attempt waits for it
        if writer.generation > 1:
            wait_for(written.exists, what="the late write")
        return derive_into(writer, items, redis, consumer)

    monkeypatch.setattr(derive, "derive_into", after_the_late_write)
    try:
        worker = start_lister(rebuild_processes=2, rebuild_split_from=0, lease_ttl=LONG_LEASE)
        wait_caught_up(redis)
    finally:
        _kill_if_running(str(written))  # the late writer, should it still wait
    assert written.exists()
    [first_attempt] = range(1, worker.generation)
    assert not list(redis.scan_iter(match=LEGACY.view_pattern(first_attempt)))
    assert current_view(redis) == naive_view(redis)


def test_each_chunk_names_its_users_so_a_chunk_written_after_a_delete_is_deleted_too(redis):
    def job(job_id: int, userid: int) -> JobView:
        return JobView(id=job_id, userid=userid, state="INACTIVE", t_inactive=float(job_id))

    with BulkWriter(redis, LEGACY, 5) as writer:
        writer.add(job(1, 100))
        writer.flush()
        delete_generation(redis, LEGACY, 5)
        writer.add(job(2, 100))  # a user the writer has seen before
        writer.add(job(3, 200))
        writer.flush()
    assert redis.exists(LEGACY.view_user_list(5, 100, "inactive"))
    delete_generation(redis, LEGACY, 5)
    assert redis.keys("*") == []


def test_a_stopped_worker_leaves_no_helper_behind(redis, many_small_entries, start_lister, monkeypatch, tmp_path):
    pid_file = tmp_path / "helper.pid"
    waits_forever = f"import os, time; open({str(pid_file)!r}, 'w').write(str(os.getpid())); time.sleep(60)"
    monkeypatch.setattr(helper_processes, "HELPER_COMMAND", [sys.executable, "-c", waits_forever])
    worker = start_lister(wait=False, rebuild_processes=2, rebuild_split_from=0)
    try:
        wait_for(lambda: pid_file.exists() and pid_file.read_text(), what="the helper to start")
        pid = int(pid_file.read_text())
        # the worker has read its share (claimed past the last of the 60 entries) and waits for the helper
        wait_for(lambda: _claims(redis) > 60, what="the worker to read its share")
        worker.stop.set()
        wait_for(lambda: not _alive(pid), what="the helper to be gone")
    finally:
        _kill_if_running(str(pid_file))
    assert not worker.applying.is_set()


def test_a_lister_process_forks_its_helper_and_builds_the_same_view(redis, many_small_entries, spawn):
    lister = spawn("lister", env={"JOBJOURNAL_REBUILD_SPLIT_FROM": "0"})
    wait_caught_up(redis)
    log = Path(lister.log_path).read_text()
    assert "rebuild helper" in log and "jobs" in log and "Traceback" not in log
    assert current_view(redis) == naive_view(redis)


def test_a_reply_that_is_not_numbered_makes_the_worker_build_alone(redis, many_small_entries, start_lister,
                                                                   monkeypatch):
    monkeypatch.setattr(rf, "entry_id", lambda ordinal, version: "*")  # as from an older manager
    worker = start_lister(rebuild_processes=2, rebuild_split_from=0)
    wait_caught_up(redis)
    assert worker.helpers.works is False
    assert current_view(redis) == naive_view(redis)


def test_a_report_longer_than_a_pipe_holds_is_read_while_the_helper_writes_it():
    writer = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdout.buffer.write(b'x' * 10**6)"],
                              stdout=subprocess.PIPE)
    data = helper_processes._read_until_closed(writer.stdout.fileno(), renew=lambda: None, stop=threading.Event())
    assert writer.wait(10) == 0 and data == b"x" * 10**6
    writer.stdout.close()


def _alive(pid: int) -> bool:
    """Whether the process runs (a zombie, exited but not yet reaped, does not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def _kill_if_running(marker: str) -> None:
    """Kill the processes this test started outside the fixtures' care (a helper's own child, a
    helper that waits for ever), should they still run: those whose command line holds
    `marker`, a path in the test's own tmp_path."""
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            if marker.encode() in (proc / "cmdline").read_bytes():
                os.kill(int(proc.name), signal.SIGKILL)
        except (OSError, ProcessLookupError):
            pass


def test_a_helper_whose_lister_is_killed_stops_and_the_next_lister_builds_the_view(
    redis, many_small_entries, spawn, start_lister, monkeypatch
):
    from jobjournal.manager import backlog

    monkeypatch.setattr(backlog, "CHUNK_REMEMBERED", 2)
    write_chunk = backlog.Backlog.write_chunk
    killed = threading.Event()

    def slowly(self, redis_):  # until the lister is killed: 150 chunks, 50 ms apart, 7.5 s in all
        if not killed.is_set():
            time.sleep(0.05)
        write_chunk(self, redis_)

    monkeypatch.setattr(backlog.Backlog, "write_chunk", slowly)
    lister = spawn("lister", env={"JOBJOURNAL_REBUILD_SPLIT_FROM": "0"})
    children = Path(f"/proc/{lister.pid}/task/{lister.pid}/children")
    wait_for(lambda: children.read_text().split(), what="the helper to be forked")
    [helper] = [int(pid) for pid in children.read_text().split()]
    os.kill(lister.pid, 9)
    killed.set()
    lister.wait(10)
    wait_for(lambda: not _alive(helper), what="the orphaned helper to stop")
    start_lister()
    wait_caught_up(redis)
    assert current_view(redis) == naive_view(redis)
