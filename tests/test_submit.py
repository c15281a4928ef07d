"""Submitting through the rq ingest queue, from the Python API and the CLI."""

import os
import re

import msgspec
import pytest
import redis as redis_lib

from jobjournal.common import keys, tasks
from jobjournal.common.errors import InvalidJobspec, RequestFailed
from jobjournal.common.ids import f58, parse_job_id
from jobjournal.common.jobspec import encode, make_jobspec
from jobjournal.common.keys import LEGACY
from jobjournal.manager import client
from jobjournal.manager.ingest import IngestLimits, accept_jobs
from tests.helpers import eventlog, wait_inactive


@pytest.fixture
def ingest_worker(spawn):
    return spawn("worker", "--queue", "ingest")


def test_submitted_jobs_get_ids_and_run(redis, start_manager, ingest_worker):
    start_manager()
    spec = make_jobspec(command=["hostname"], name="probe")
    job_ids = client.submit(redis, [spec, spec])
    assert len(set(job_ids)) == 2 and job_ids == sorted(job_ids)
    wait_inactive(redis, job_ids)
    assert eventlog(redis, job_ids[0])[0].userid == __import__("os").getuid()


def test_an_invalid_jobspec_is_refused_by_the_worker_and_nothing_is_written(redis, ingest_worker):
    queue = tasks.ingest_queue(redis)
    good = msgspec.json.encode(make_jobspec(command=["true"])).decode()
    task = queue.enqueue(tasks.INGEST, [good, '{"command":["x"],"ntasks":-2}'], 1000)
    result = task.latest_result(timeout=30)
    assert result.return_value == {"error": "jobspec 2 of 2: invalid jobspec: Expected `int` >= 1 - at `$.ntasks`"}
    assert redis.xlen(keys.manager_inbox()) == 0


@pytest.mark.parametrize(
    ("document", "message"),
    [
        (b"not json", "invalid jobspec: JSON is malformed"),
        (b'{"ntasks": 1}', "missing required field `command`"),
        (b'{"command": ["x"], "cores_per_task": "many"}', "at `$.cores_per_task`"),
        (b'{"command": ["x"], "environment": {"A=B": "c"}}', "in `$.environment`"),
        (b'{"command": ["x"], "bogus": 1}', "unknown field `bogus`"),
        (b'{"command": ["' + b"x" * 70000 + b'"]}', "more than the limit"),
    ],
)
def test_malformed_jobspecs_get_a_clear_error_and_change_nothing(redis, document, message):
    with pytest.raises(InvalidJobspec, match=re.escape(message)):
        accept_jobs(redis, [document], 1000)
    assert redis.xlen(keys.manager_inbox()) == 0
    assert redis.keys("*") == []


def test_submitting_with_no_worker_fails_clearly_and_leaves_no_submission(redis):
    with pytest.raises(RequestFailed, match="no ingest worker answered within 1s"):
        client.submit(redis, [make_jobspec(command=["true"])], timeout=1)
    assert len(tasks.ingest_queue(redis)) == 0


def test_an_enqueue_redis_refuses_fails_at_once_with_its_reason_and_queues_nothing(redis, redis_url):
    user = "jj-test-no-rq"  # may write jobjournal's keys, not rq's
    redis.acl_setuser(user, enabled=True, passwords=["+pw"], keys=["jj:*"], commands=["+@all"], reset=True)
    refused = redis_lib.Redis.from_url(redis_url, username=user, password="pw")
    try:
        with pytest.raises(redis_lib.exceptions.NoPermissionError):  # not a wait for an answer
            client.submit(refused, [make_jobspec(command=["true"])], timeout=30)
    finally:
        refused.close()
        redis.acl_deluser(user)
    assert len(tasks.ingest_queue(redis)) == 0 and not redis.keys("rq:job:*")


def test_the_cli_submits_copies_and_prints_one_short_id_per_line(redis, start_manager, ingest_worker, cli):
    start_manager()
    result = cli("submit", "--cc", "3", "--name", "copies", "--env=-*", "--env", "A=1", "--", "echo", "hello")
    assert result.exit_code == 0, result.output
    ids = [parse_job_id(line) for line in result.output.split()]
    assert len(ids) == 3 and all(f58(job_id) in result.output for job_id in ids)
    wait_inactive(redis, ids)
    jobspec = msgspec.json.decode(redis.xrange(LEGACY.job_eventlog(ids[0]))[0][1][b"data"])
    assert jobspec["name"] == "copies" and jobspec["command"] == ["echo", "hello"] and "environment" not in jobspec
    assert redis.get(LEGACY.job_environment(ids[0])) == b'{"A":"1"}'


def test_the_cli_submits_the_submitters_environment_trimmed_by_its_rules(redis, start_manager, ingest_worker, cli,
                                                                        monkeypatch):
    start_manager()
    monkeypatch.setenv("JJ_TEST_KEEP", "kept")
    monkeypatch.setenv("JJ_TEST_DROP", "dropped")
    whole = parse_job_id(cli("submit", "--", "true").output)
    trimmed = parse_job_id(cli("submit", "--env=-*", "--env=JJ_TEST_K*", "--env", "B=${JJ_TEST_KEEP}-b",
                               "--", "true").output)
    removed = parse_job_id(cli("submit", "--env-remove", "JJ_TEST_D*", "--", "true").output)
    wait_inactive(redis, [whole, trimmed, removed])

    def environment(job_id):
        return msgspec.json.decode(redis.get(LEGACY.job_environment(job_id)))

    assert environment(whole)["JJ_TEST_DROP"] == "dropped" and environment(whole)["PATH"] == os.environ["PATH"]
    assert environment(trimmed) == {"JJ_TEST_KEEP": "kept", "B": "kept-b"}
    assert "JJ_TEST_DROP" not in environment(removed) and environment(removed)["JJ_TEST_KEEP"] == "kept"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--ntasks", "0", "--", "true"], "Invalid value for '-n' / '--ntasks'"),
        (["-N", "3", "-n", "2", "--", "true"], "more nodes than tasks"),
        (["--env", "1X=y", "--", "true"], "'1X' is not a variable name"),
        (["--time-limit", "soon", "--", "true"], "'soon' is not a duration"),
        (["--urgency", "32", "--", "true"], "Invalid value for '--urgency'"),
        ([], "Missing argument 'COMMAND...'"),
    ],
)
def test_the_cli_refuses_bad_submissions_before_sending_anything(redis, cli, args, message):
    result = cli("submit", *args)
    assert result.exit_code != 0 and message in result.output
    assert "Traceback" not in result.output
    assert redis.keys("*") == []


def test_a_submitter_past_the_rate_limit_is_refused_and_nothing_is_written(redis):
    from jobjournal.manager.ingest import RateLimited

    spec = msgspec.json.encode(make_jobspec(command=["true"]))
    # The limit counts the jobs of a user's current second (of time.time(), which ingest reads
    # itself). An attempt whose two submissions fall in two seconds is told apart by its counters
    # (the second one charged a counter of its own, from 0) and made again by another user.
    for userid in range(1000, 1020):
        accept_jobs(redis, [spec] * 8, userid, limits=IngestLimits(rate_limit=10))
        before = redis.xlen(keys.manager_inbox())
        try:
            accept_jobs(redis, [spec] * 5, userid, limits=IngestLimits(rate_limit=10))
        except RateLimited as err:
            assert str(err) == f"rate limit: user {userid} may submit 10 jobs per second"
            assert redis.xlen(keys.manager_inbox()) == before
            break
        counters = [int(redis.get(key) or 0) for key in redis.scan_iter(match=keys.submit_rate(userid, "*"))]
        assert 5 in counters, f"13 jobs of user {userid} in one second were accepted: counters {counters}"
    else:
        pytest.fail("every attempt straddled two seconds")
    # another user has a budget of their own
    accept_jobs(redis, [spec] * 2, userid + 100, limits=IngestLimits(rate_limit=10))


def test_the_ingest_worker_enforces_its_configured_jobspec_size_limit(redis, spawn):
    spawn("worker", "--queue", "ingest", env={"JOBJOURNAL_MAX_JOBSPEC_BYTES": "100"})
    with pytest.raises(InvalidJobspec, match="more than the limit of 100"):
        client.submit(redis, [make_jobspec(command=["echo", "x" * 200])])
    assert redis.xlen(keys.manager_inbox()) == 0


def test_with_no_manager_submit_and_cancel_say_the_request_is_queued_and_exit_3(redis, redis_url, ingest_worker,
                                                                                  spawn, tmp_path):
    import os
    import subprocess
    import sys

    from tests.conftest import ROOT

    def run(*args: str) -> subprocess.CompletedProcess:
        env = {**os.environ, "JOBJOURNAL_REDIS_URL": redis_url, "JOBJOURNAL_HOME": str(tmp_path),
               "JOBJOURNAL_REQUEST_TIMEOUT": "3600"}  # waiting for a reply would outlive the test's timeout
        return subprocess.run([sys.executable, "-m", "jobjournal", *args], env=env, cwd=ROOT, capture_output=True,
                              text=True, timeout=120)

    submitted = run("submit", "--sim-runtime", "600", "--", "app")
    assert submitted.returncode == 3, submitted.stderr
    [short_id] = submitted.stdout.split()
    assert "no manager is running: the job waits in the inbox until `jobjournal manager` starts" in submitted.stderr
    canceled = run("cancel", short_id)
    assert canceled.returncode == 3
    assert canceled.stderr.strip() == (
        "Error: no manager is running: the request waits in the inbox until `jobjournal manager` starts")
    spawn("manager")  # both requests take effect, in order
    job_id = parse_job_id(short_id)
    wait_inactive(redis, [job_id])
    assert [e.__struct_config__.tag for e in eventlog(redis, job_id)][-1] == "clean"
    assert any(getattr(e, "type", None) == "cancel" for e in eventlog(redis, job_id))


def test_a_request_past_the_byte_limit_is_refused_with_the_limit_named_and_nothing_is_written(redis, spawn, cli,
                                                                                           monkeypatch):
    spawn("worker", env={"JOBJOURNAL_MAX_REQUEST_BYTES": "50000"})
    big = make_jobspec(command=["true"], environment={"BIG": "x" * 10_000})
    with pytest.raises(InvalidJobspec, match="the limit is 50,000 .JOBJOURNAL_MAX_REQUEST_BYTES"):
        client.submit(redis, [big] * 10)  # refused by the worker
    monkeypatch.setenv("JOBJOURNAL_MAX_REQUEST_BYTES", "50000")
    monkeypatch.setenv("BIG", "x" * 10_000)
    refused = cli("submit", "--cc", "10", "--", "true")  # refused before anything is sent
    assert refused.exit_code == 1 and "JOBJOURNAL_MAX_REQUEST_BYTES" in refused.output
    assert redis.xlen(keys.manager_inbox()) == 0 and tasks.ingest_queue(redis).count == 0


def test_the_byte_limit_counts_bytes_not_characters(redis, spawn):
    spawn("worker", env={"JOBJOURNAL_MAX_REQUEST_BYTES": "50000"})
    wide = make_jobspec(command=["true"], environment={"WIDE": "\u00e9" * 15_000})  # 15,000 characters, 30,000 bytes
    with pytest.raises(InvalidJobspec, match="the limit is 50,000"):
        client.submit(redis, [wide] * 2)
    assert redis.xlen(keys.manager_inbox()) == 0


def test_with_submit_on_disk_a_submission_is_acknowledged_once_in_the_aof_or_the_worker_says_why_it_cannot(redis):
    from jobjournal.common import inbox
    from jobjournal.common.errors import JobJournalError
    from jobjournal.common.settings import Settings
    from jobjournal.manager.task_tools import worker_tools

    spec = encode(make_jobspec(command=["true"]))
    refusal = inbox.on_disk_refusal(redis)
    if refusal is None:  # Redis 7.2 or newer, with an AOF
        [job_id] = accept_jobs(redis, [spec], 1000, limits=IngestLimits(on_disk_s=5))
        assert redis.xlen(keys.manager_inbox()) == 1
        assert redis.info("persistence")["aof_last_write_status"] == "ok"
        return
    assert "JOBJOURNAL_SUBMIT_ON_DISK_S needs" in refusal and "\n" not in refusal
    with pytest.raises(JobJournalError, match="JOBJOURNAL_SUBMIT_ON_DISK_S needs"):
        worker_tools(Settings(submit_on_disk_s=5), redis)  # an ingest worker will not start so
    with pytest.raises(inbox.NotOnDisk, match="written, but Redis cannot confirm it on disk"):
        accept_jobs(redis, [spec], 1000, limits=IngestLimits(on_disk_s=5))  # a plain rq worker's task says so
