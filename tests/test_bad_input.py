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


def test_a_huge_bad_entry_is_set_aside_as_a_bounded_excerpt(redis, start_manager):
    start_manager()
    redis.xadd(keys.manager_inbox(), {b"msg": b"x" * 5_000_000, **{f"extra{i}".encode(): b"y" for i in range(20)}})
    wait_inactive(redis, submit(redis))
    [(_, letter)] = redis.xrange(keys.dead_letters())
    assert letter[b"field:msg"] == b"x" * 512 and letter[b"length:msg"] == b"5000000"
    assert sum(len(key) + len(value) for key, value in letter.items()) < 8192
    assert len([key for key in letter if key.startswith(b"field:")]) == 8


@pytest.mark.parametrize("job", [
    '{"id": -1, "userid": 1000, "t_submit": 1.0, "jobspec": {"command": ["true"]}}',
    '{"id": 9223372036854775808, "userid": 1000, "t_submit": 1.0, "jobspec": {"command": ["true"]}}',
    '{"id": 7, "userid": 1000, "t_submit": 1e15, "jobspec": {"command": ["true"]}}',
])
def test_a_forged_submission_with_an_id_or_time_out_of_range_is_set_aside_and_listings_go_on(
        redis, start_manager, start_lister, cli, job):
    start_manager()
    start_lister()
    redis.xadd(keys.manager_inbox(), {b"msg": f'{{"request": "submit", "jobs": [{job}]}}'.encode()})
    [fine] = submit(redis)
    wait_inactive(redis, [fine])
    [(_, letter)] = redis.xrange(keys.dead_letters())
    assert b"bad request" in letter[b"reason"]
    listed = cli("jobs", "-A", "-a", "-o", "{id.f58} {t_submit_iso}")
    assert listed.exit_code == 0 and f58(fine) in listed.output


def test_a_request_the_manager_cannot_decode_is_answered_at_once_not_after_the_timeout(redis, start_manager):
    from jobjournal.common import messages

    start_manager()
    redis.xadd(keys.manager_inbox(), {b"msg": b'{"request": "raise", "ids": [1], "userid": 0, "type": "%s", '
                                              b'"reply_to": "abc123"}' % (b"t" * 100)})
    _, raw = redis.blpop([keys.reply("abc123")], timeout=20)
    assert messages.decode_reply(raw).error.startswith("request refused: bad request")


def test_an_overlong_exception_type_is_refused_before_anything_is_sent(redis, cli):
    result = cli("raise", "--type", "t" * 100, "f2345")
    assert result.exit_code != 0 and "at most 64 characters" in result.output
    assert redis.xlen(keys.manager_inbox()) == 0


@pytest.mark.parametrize(("fmt", "message"), [
    ("{0}", "Replacement index 0"), ("{", "Single '{'"), ("{userid[0]}", "not subscriptable"),
    ("{id:>99999999}", "at most 1000"), ("{name:.5000}", "at most 1000"),
])
def test_bad_format_strings_get_one_line_and_no_traceback(redis, start_manager, start_lister, cli, fmt, message):
    start_manager()
    start_lister()
    result = cli("jobs", "-o", fmt)
    assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output


def test_a_constraint_nested_ten_thousand_deep_is_refused_in_one_line(redis, start_manager, start_lister, cli):
    start_manager()
    start_lister()
    deep = '{"not":[' * 10_000 + "{}" + "]}" * 10_000
    result = cli("jobs", "--constraint", deep)
    assert result.exit_code == 2 and "nested too deep" in result.output


def test_escape_codes_in_a_job_name_are_listed_escaped(redis, start_manager, start_lister, cli):
    start_manager()
    start_lister()
    [job_id] = submit(redis, name="evil\x1b]0;pwned\x07\x1b[2J")
    wait_inactive(redis, [job_id])
    from tests.helpers import wait_caught_up

    wait_caught_up(redis)
    listed = cli("jobs", "-a", "-u", "1000", "-o", "{name}").output
    assert "\x1b" not in listed and "\x07" not in listed and "evil\\x1b]0;pwned\\x07\\x1b[2J" in listed


def test_a_forged_cancel_naming_more_jobs_than_a_request_may_is_refused_at_once_and_the_manager_goes_on(
        redis, start_manager):
    from jobjournal.common import messages

    manager = start_manager()
    ids = ",".join(str(n) for n in range(1, 200_001)).encode()
    redis.xadd(keys.manager_inbox(), {b"msg": b'{"request": "cancel", "ids": [%s], "userid": 0, "reply_to": "r1"}'
                                      % ids})
    _, raw = redis.blpop([keys.reply("r1")], timeout=20)
    assert "length <= 10000" in messages.decode_reply(raw).error
    wait_inactive(redis, submit(redis))
    [(_, letter)] = redis.xrange(keys.dead_letters())
    assert b"length <= 10000" in letter[b"reason"]
    assert manager.lease.token == redis.get(keys.manager_lease()).decode()


def test_an_inbox_request_longer_than_the_limit_is_set_aside_before_it_is_decoded(redis, start_manager):
    from jobjournal.common import inbox, messages

    start_manager(max_request_bytes=1000)
    limit = inbox.entry_limit(1000)
    note = "n" * (limit + 1)
    redis.xadd(keys.manager_inbox(), {b"msg": b'{"request": "cancel", "ids": [1], "userid": 0, "reply_to": "r2", '
                                      b'"note": "%s"}' % note.encode()})
    _, raw = redis.blpop([keys.reply("r2")], timeout=20)
    assert f"the limit is {limit:,}" in messages.decode_reply(raw).error
    wait_inactive(redis, submit(redis))


def test_the_client_sends_more_ids_than_a_request_may_name_in_several_requests(redis, start_manager):
    from jobjournal.manager import client

    start_manager()
    [job] = submit(redis, sim={"runtime": 3600})
    unknown = list(range(1, 25_001))
    errors = client.cancel(redis, [*unknown, job], userid=1000)
    assert set(errors) == set(unknown)
    wait_inactive(redis, [job])


def test_a_note_past_its_limit_is_refused_before_anything_is_sent(redis):
    from jobjournal.common.errors import RequestFailed
    from jobjournal.manager import client

    with pytest.raises(RequestFailed, match="the limit is 4,096"):
        client.cancel(redis, [1], note="n" * 5000, userid=1000)
    assert redis.xlen(keys.manager_inbox()) == 0


def test_a_run_of_inbox_entries_slow_to_decode_is_set_aside_once_and_the_manager_keeps_its_lease(
        redis, start_manager, caplog):
    environment = ",".join(f'"V{i}":""' for i in range(300_000))  # ~0.2 s each to decode, then refused
    slow = b'{"request":"submit","jobs":[{"id":5,"t_submit":1.0,"jobspec":{"command":["true"],"environment":{' + \
        environment.encode() + b'}},"userid":-1}]}'
    for _ in range(15):  # waiting for the manager: about three seconds of decoding, more than its lease's TTL
        redis.xadd(keys.manager_inbox(), {b"msg": slow})
    manager = start_manager(lease_ttl=2.0)
    wait_inactive(redis, submit(redis))
    assert redis.xlen(keys.dead_letters()) == 15  # each once: no leader lost them to read them again
    assert manager.leading.is_set()
    assert not [r.message for r in caplog.records if "standing by" in r.message]
