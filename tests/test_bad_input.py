"""Bad input gets a clear error and changes nothing; no process crashes on it."""

import os
import subprocess
import sys
import time

import pytest

from jobjournal.common import keys
from jobjournal.common.ids import f58
from jobjournal.common.keys import LEGACY
from tests.conftest import ROOT
from tests.helpers import submit, wait_for, wait_inactive


@pytest.mark.parametrize(
    "fields",
    [
        {b"msg": b"not json"},
        {b"msg": b'{"request": "launch-missiles"}'},
        {b"msg": b'{"request": "cancel", "ids": "all", "userid": 0}'},
        {b"other": b"field"},
    ],
)
def test_a_corrupt_inbox_entry_is_set_aside_with_its_reason_and_the_manager_goes_on(redis, start_manager, fields):
    start_manager()
    redis.xadd(keys.manager_inbox(), fields)
    wait_inactive(redis, submit(redis))
    [(_, letter)] = redis.xrange(keys.dead_letters())
    assert letter[b"source"] == keys.manager_inbox().encode() and letter[b"reason"]
    assert {key.removeprefix(b"field:"): value for key, value in letter.items() if key.startswith(b"field:")} == fields
    assert redis.scard(LEGACY.active_jobs()) == 0


def test_unknown_and_malformed_job_ids_get_clear_errors_from_the_cli(redis, start_manager, cli):
    start_manager()
    result = cli("cancel", "f2345")
    assert result.exit_code == 1 and result.output.strip() == "f2345: no such job"
    result = cli("cancel", "not-an-id")
    assert result.exit_code == 2 and "invalid job id 'not-an-id'" in result.output
    result = cli("eventlog", "12345")
    assert result.exit_code == 1 and f"Error: no such job: {f58(12345)}" in result.output, "named by its short form"
    result = cli("eventlog", "--follow", f58(12345))
    assert result.exit_code == 1 and f"Error: no such job: {f58(12345)}" in result.output
    assert redis.xlen(LEGACY.journal()) == 0


def _run_cli(*args, env):
    return subprocess.run(
        [sys.executable, "-m", "jobjournal", *args],
        env={**os.environ, **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )


@pytest.mark.parametrize("args", [["submit", "--", "true"], ["cancel", "1"], ["eventlog", "1"], ["redis", "status"]])
def test_an_unreachable_redis_gives_one_line_and_no_traceback(tmp_path, args):
    url = f"unix://{tmp_path}/nothing-here.sock"
    result = _run_cli(*args, env={"JOBJOURNAL_REDIS_URL": url})
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [f"Error: cannot reach Redis at {url}: " + _reason(result.stderr)]


def _reason(stderr: str) -> str:
    return stderr.strip().split(": ", 2)[-1]


def test_a_bad_setting_is_named_in_a_one_line_error(tmp_path):
    result = _run_cli("redis", "status", env={"JOBJOURNAL_NODES": "many", "JOBJOURNAL_HOME": str(tmp_path)})
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == ["Error: bad setting JOBJOURNAL_NODES: Expected `int`, got `str`"]


def test_a_malformed_redis_url_is_a_one_line_error_naming_its_variable(tmp_path):
    result = _run_cli("jobs", env={"JOBJOURNAL_REDIS_URL": "localhost:6379", "JOBJOURNAL_HOME": str(tmp_path)})
    assert result.returncode == 1
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("Error: 'localhost:6379' (JOBJOURNAL_REDIS_URL) is not a Redis URL")


def test_redis_start_and_stop_refuse_a_server_they_do_not_run(tmp_path):
    env = {"JOBJOURNAL_REDIS_URL": "redis://127.0.0.1:1/0", "JOBJOURNAL_HOME": str(tmp_path)}
    for verb in ("start", "stop"):
        result = _run_cli("redis", verb, env=env)
        assert result.returncode == 1, verb
        assert f"`redis {verb}` acts only on the embedded server" in result.stderr
        assert not (tmp_path / "redis.sock").exists()


def test_the_manager_waits_out_a_redis_outage_and_carries_on(redis, start_manager, redis_server):
    server = redis_server.own_server()  # the session's own embedded server, which this test restarts
    manager = start_manager()
    wait_inactive(redis, submit(redis, 3))
    try:
        server.stop()
        wait_for(lambda: not manager.leading.is_set(), what="the manager to notice")
    finally:
        server.start()  # whatever happened: the tests after this one need it
    wait_for(manager.leading.is_set, what="the manager to lead again")
    wait_inactive(redis, submit(redis, 3))


def test_a_submission_delivered_twice_runs_once(redis, start_manager):
    start_manager()
    [job_id] = submit(redis)
    [(_, fields)] = redis.xrange(keys.manager_inbox())
    wait_inactive(redis, [job_id])
    redis.xadd(keys.manager_inbox(), fields)  # as a retried XADD would
    wait_inactive(redis, submit(redis))
    from tests.helpers import names

    assert names(redis, job_id).count("submit") == 1
    assert names(redis, job_id).count("clean") == 1


def test_a_restart_with_many_held_jobs_keeps_the_lease_throughout(redis, start_manager, monkeypatch, caplog):
    from jobjournal.manager import manager as manager_module
    from tests.helpers import names

    held = submit(redis, 600, urgency=0)
    first = start_manager()
    wait_for(lambda: "priority" in names(redis, held[-1]))
    first.stop.set()
    wait_for(lambda: not first.leading.is_set())
    # a restore that outlasts the lease (1 s) however fast the machine is: 30 chunks of 20 jobs,
    # each at least 50 ms; only renewing the lease on the way keeps it
    restore_chunk = manager_module.Manager._restore_chunk

    def slowly(self, job_ids):
        time.sleep(0.05)
        restore_chunk(self, job_ids)

    monkeypatch.setattr(manager_module, "RESTORE_CHUNK", 20)
    monkeypatch.setattr(manager_module.Manager, "_restore_chunk", slowly)
    second = start_manager()
    wait_for(lambda: names(redis, held[-1]).count("priority") == 2)
    assert second.leading.is_set()
    assert "standing by" not in caplog.text, "the manager lost its lease"
    assert all(names(redis, job_id).count("restart") == 1 for job_id in held[::50])


def test_a_large_backlog_of_submissions_is_worked_through_without_losing_the_lease(redis, start_manager, caplog):
    job_ids = []
    for _ in range(8):
        job_ids += submit(redis, 1000)
    manager = start_manager()
    term = manager.life
    wait_inactive(redis, job_ids, timeout=50)
    assert manager.life is term and "standing by" not in caplog.text, "the manager lost its lease"


def test_a_password_in_a_redis_url_never_reaches_an_error_message(tmp_path):
    for url in ("redis://app:s3cret-pw@127.0.0.1:1/0", "redis+nope://app:s3cret-pw@host:1"):
        result = _run_cli("jobs", env={"JOBJOURNAL_REDIS_URL": url, "JOBJOURNAL_HOME": str(tmp_path)})
        assert result.returncode == 1 and "s3cret-pw" not in result.stderr and "app:***@" in result.stderr
