"""The Redis ACL roles in deploy/users.acl: each role's forbidden operations fail."""

import shutil
import tempfile

import pytest
import redis as redis_lib

from jobjournal.common import keys, tasks
from jobjournal.common.keys import LEGACY, Partition
from jobjournal.common.redis_server import EmbeddedRedis
from tests.conftest import ROOT, TEST_REDIS_URL_VAR, external_redis_url

USERS = ROOT / "deploy" / "users.acl"
TAGGED = Partition(3, "3.7")
"""A partition of a partitioned store: its keys are jj:{3.7}:..."""
LAYOUTS = pytest.mark.parametrize("part", [LEGACY, TAGGED], ids=["legacy", "partitioned"])


@pytest.fixture(scope="module")
def acl_server():
    if external_redis_url():
        pytest.skip(f"sets ACL users on an embedded server of its own; {TEST_REDIS_URL_VAR} is set")
    home = tempfile.mkdtemp(prefix="jj-acl-", dir="/tmp")
    server = EmbeddedRedis(home)
    server.start()
    admin = redis_lib.Redis(unix_socket_path=str(server.socket))
    _set_roles(admin)
    for part in (LEGACY, TAGGED):
        admin.xadd(part.journal(), {"name": "submit"})
        admin.xadd(part.job_eventlog(1), {"name": "submit"})
        admin.set(part.job_environment(1), '{"SECRET":"x"}')
        admin.set(part.view_current(), 1)
    yield server
    admin.close()
    server.stop()
    shutil.rmtree(home, ignore_errors=True)


@pytest.fixture
def login(acl_server):
    clients = []

    def connect(user: str) -> redis_lib.Redis:
        client = redis_lib.Redis(unix_socket_path=str(acl_server.socket), username=user, password=_password(user))
        clients.append(client)
        return client

    yield connect
    for client in clients:
        client.close()


def _set_roles(admin) -> None:
    """The roles of deploy/users.acl, set on a server the test's connection (default user) keeps
    using: every user but `default` (tests/test_acl_files.py loads the whole file as an aclfile)."""
    for line in USERS.read_text().splitlines():
        if line.startswith("user ") and not line.startswith("user default "):
            admin.execute_command("ACL", "SETUSER", *line.split()[1:])


def _password(user: str) -> str:
    return next(
        word[1:] for line in USERS.read_text().splitlines() if line.startswith(f"user {user} ")
        for word in line.split() if word.startswith(">")
    )


def _refused(call) -> None:
    with pytest.raises(redis_lib.exceptions.NoPermissionError):
        call()


@LAYOUTS
def test_a_reader_can_only_read_the_view_eventlogs_and_outputs(login, part):
    reader = login("reader")
    assert reader.get(part.view_current()) == b"1"
    reader.xrange(part.job_eventlog(1))  # job wait, job show
    reader.xrange(part.job_output(1))  # job output
    _refused(lambda: reader.set(part.view_current(), 2))
    _refused(lambda: reader.xadd(part.job_eventlog(1), {"name": "forged"}))
    _refused(lambda: reader.get(part.job_environment(1)))
    _refused(lambda: reader.xrange(part.journal()))
    _refused(lambda: reader.set(keys.layout(), "{}"))


def test_a_submitter_can_only_enqueue_send_requests_and_prove_as_itself(login):
    submitter = login("submitter")
    tasks.ingest_queue(submitter).enqueue(tasks.INGEST, ["{}"], 1000)
    tasks.ingest_queue(submitter).enqueue(tasks.FORWARD, "{}")  # its requests go through an ingest worker
    _refused(lambda: submitter.xadd(keys.manager_inbox(), {"msg": b"{}"}))  # nor may it trim others' away
    _refused(lambda: submitter.xtrim(keys.manager_inbox(), maxlen=0))
    submitter.rpush(keys.reply("r", "submitter"), "x")
    _refused(lambda: submitter.lpop(keys.reply("r", "someone-else")))
    _refused(lambda: submitter.lpop(keys.reply("r")))
    submitter.set(keys.proof("submitter", "n"), "digest")
    _refused(lambda: submitter.set(keys.proof("someone-else", "n"), "digest"))
    _refused(lambda: submitter.get(LEGACY.view_current()))
    _refused(lambda: submitter.xrange(LEGACY.journal()))
    _refused(lambda: submitter.get(LEGACY.job_environment(1)))
    _refused(lambda: submitter.set(keys.manager_lease(), "mine"))


def test_a_submitter_submits_through_a_worker_logged_in_as_worker(login, acl_server, spawn):
    from jobjournal.common.jobspec import make_jobspec
    from jobjournal.manager import client

    url = f"unix://worker:{_password('worker')}@{acl_server.socket}"
    spawn("worker", "--queue", "ingest", env={"JOBJOURNAL_REDIS_URL": url})
    before = login("admin").xlen(keys.manager_inbox())
    ids = client.submit(login("submitter"), [make_jobspec(command=["true"])] * 2, userid=1000, timeout=20)
    assert len(ids) == 2 and login("admin").xlen(keys.manager_inbox()) == before + 1


@LAYOUTS
def test_a_lister_reads_the_journal_and_writes_the_view_but_nothing_private(login, part):
    lister = login("lister")
    assert lister.xrange(part.journal())
    lister.hset(part.view_jobs(1), 1, b"{}")
    _refused(lambda: lister.xrange(part.job_eventlog(1)))
    _refused(lambda: lister.get(part.job_environment(1)))
    _refused(lambda: lister.set(keys.manager_lease(), "mine"))
    _refused(lambda: lister.get(part.inbox_cursor()))
    _refused(lambda: lister.set(part.manager_fence(), "mine"))
    _refused(lambda: lister.xadd(part.job_eventlog(2), {"name": "forged"}))


def test_the_manager_writes_events_but_cannot_wipe_or_reconfigure_redis(login):
    manager = login("manager")
    manager.xadd(LEGACY.job_eventlog(2), {"name": "submit"})
    _refused(lambda: manager.flushall())
    _refused(lambda: manager.config_set("appendonly", "no"))
    _refused(lambda: manager.keys("*"))


@LAYOUTS
def test_a_worker_hands_jobs_over_but_cannot_touch_events_or_the_view(login, part):
    worker = login("worker")
    worker.xadd(keys.manager_inbox(), {"msg": b"{}"})
    worker.incr(keys.id_generator())
    _refused(lambda: worker.xadd(part.journal(), {"name": "forged"}))
    _refused(lambda: worker.get(part.view_current()))
    _refused(lambda: worker.xrange(part.job_eventlog(1)))


@pytest.mark.parametrize("partitions", [1, 4], ids=["legacy", "partitioned"])
def test_every_role_does_its_work_logged_in_as_itself(partitions, spawn):
    """A manager, a lister and queries, each logged in with its own role, on a store of its own."""
    from jobjournal.common.layout import create_layout
    from jobjournal.lister import query as q
    from tests.helpers import submit, wait_caught_up, wait_inactive

    home = tempfile.mkdtemp(prefix="jj-acl-", dir="/tmp")
    server = EmbeddedRedis(home)
    server.start()
    admin = redis_lib.Redis(unix_socket_path=str(server.socket))
    reader = None
    try:
        _set_roles(admin)
        if partitions > 1:
            create_layout(admin, partitions)

        def url(user: str) -> str:
            return f"unix://{user}:{_password(user)}@{server.socket}"

        env = {"JOBJOURNAL_PARTITIONS": str(partitions)}
        spawn("manager", env={**env, "JOBJOURNAL_REDIS_URL": url("manager")})
        spawn("lister", env={**env, "JOBJOURNAL_REDIS_URL": url("lister")})
        job_ids = submit(admin, 12)  # as an ingest worker would (its role is tested above)
        wait_inactive(admin, job_ids)
        wait_caught_up(admin)
        reader = redis_lib.Redis.from_url(url("reader"))
        listed = q.list_jobs(reader, q.ListQuery(attrs=["id", "state"]))
        assert sorted(row["id"] for row in listed) == sorted(job_ids)
        assert q.list_id(reader, job_ids[0])["state"] == "INACTIVE"
        assert q.stats(reader)["inactive"] == len(job_ids)
    finally:
        if reader is not None:
            reader.close()
        admin.close()
        server.stop()
        shutil.rmtree(home, ignore_errors=True)


def test_a_command_a_role_may_not_run_says_so_in_one_line(acl_server, tmp_path):
    import os
    import subprocess
    import sys

    url = f"unix://reader:{_password('reader')}@{acl_server.socket}"
    result = subprocess.run([sys.executable, "-m", "jobjournal", "status"], cwd=ROOT, capture_output=True, text=True,
                            env={**os.environ, "JOBJOURNAL_REDIS_URL": url, "JOBJOURNAL_HOME": str(tmp_path)},
                            timeout=60)
    assert result.returncode == 1
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("Error: Redis refused it: ") and "deploy/users.acl" in line
    assert _password("reader") not in result.stderr
