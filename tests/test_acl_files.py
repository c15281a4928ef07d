"""The shipped ACL files, loaded as `aclfile` into real servers (the bundled 6.2; Debian's Redis 7
when installed), and the whole flow run as each role with identity=acl: people submit, cancel and
change urgency of their own jobs only, whatever uid they claim."""

import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis as redis_lib

from jobjournal.common import identity, inbox, keys, messages
from jobjournal.common.ids import f58, parse_job_id
from jobjournal.common.jobspec import make_jobspec
from jobjournal.common.redis_server import bundled_binary
from jobjournal.manager import client, forward
from tests.conftest import ROOT
from tests.helpers import eventlog, names, wait_for

pytestmark = pytest.mark.timeout(180)

SYSTEM_REDIS = Path("/usr/bin/redis-server")
SERVERS = {
    "6.2 users.acl": (None, "users.acl"),
    "7 users.acl": (SYSTEM_REDIS, "users.acl"),
    "7 users-redis7.acl": (SYSTEM_REDIS, "users-redis7.acl"),
}


def _password(acl_file: Path, user: str) -> str:
    line = next(line for line in acl_file.read_text().splitlines() if line.startswith(f"user {user} "))
    return next(word[1:] for word in line.split() if word.startswith(">"))


class AclServer:
    def __init__(self, binary: Path, acl_file: Path, home: Path):
        self.acl_file, self.home = acl_file, home
        self.socket = home / "redis.sock"
        shutil.copy(acl_file, home / "users.acl")
        with (home / "redis.log").open("w") as log:
            self.proc = subprocess.Popen(
                [str(binary), "--port", "0", "--unixsocket", str(self.socket), "--unixsocketperm", "700",
                 "--aclfile", str(home / "users.acl"), "--save", "", "--appendonly", "no", "--dir", str(home)],
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        wait_for(lambda: self.socket.exists() or self.proc.poll() is not None, what="the server to listen")
        assert self.proc.poll() is None, (home / "redis.log").read_text()
        self.redis7 = int(self.login("admin").info("server")["redis_version"].split(".")[0]) >= 7

    def url(self, user: str, password: str | None = None) -> str:
        return f"unix://{user}:{password or _password(self.acl_file, user)}@{self.socket}"

    def login(self, user: str, password: str | None = None) -> redis_lib.Redis:
        return redis_lib.Redis.from_url(self.url(user, password))

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait(10)


@pytest.fixture(params=list(SERVERS))
def acl_server(request, tmp_path_factory):
    binary, name = SERVERS[request.param]
    if binary is not None and not binary.exists():
        pytest.skip(f"no Redis 7 here ({binary}): .ci/run installs Debian's redis-server when it can")
    server = AclServer(binary or bundled_binary(), ROOT / "deploy" / name, tmp_path_factory.mktemp("acl"))
    yield server
    server.stop()


def _cli(server: AclServer, user: str, *args: str, password: str | None = None,
         home: Path) -> subprocess.CompletedProcess:
    env = {"PATH": "/usr/bin:/bin", "JOBJOURNAL_REDIS_URL": server.url(user, password), "JOBJOURNAL_HOME": str(home),
           "JOBJOURNAL_REQUEST_TIMEOUT": "20"}
    return subprocess.run([sys.executable, "-m", "jobjournal", *args], env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=60)


def test_the_shipped_file_loads_as_an_aclfile_and_the_default_user_is_off(acl_server):
    users = {line.split()[1] for line in acl_server.login("admin").acl_list()}
    assert users == {"default", "admin", "manager", "worker", "executor", "submitter", "lister", "reader"}
    with pytest.raises(redis_lib.exceptions.AuthenticationError):
        redis_lib.Redis(unix_socket_path=str(acl_server.socket)).ping()


def test_the_submitter_template_has_the_rules_jobjournal_gives_a_person(acl_server):
    line = next(line for line in acl_server.acl_file.read_text().splitlines() if line.startswith("user submitter "))
    redis7_file = acl_server.acl_file.name == "users-redis7.acl"
    assert line.split()[4:] == identity.person_rules("submitter", redis7=redis7_file)


def test_people_act_on_their_own_jobs_alone_whatever_uid_they_claim(acl_server, spawn, tmp_path):
    admin = acl_server.login("admin")
    for name, uid in (("alice", 1000), ("bob", 1001)):
        added = _cli(acl_server, "admin", "user", "add", name, "--uid", str(uid), "--password", f"pw-{name}",
                     home=tmp_path)
        assert added.returncode == 0, added.stderr
    acl = {"JOBJOURNAL_IDENTITY": "acl", "JOBJOURNAL_EXEC_BACKEND": "process"}
    for role in ("manager", "worker", "executor", "lister"):
        spawn(role, env={**acl, "JOBJOURNAL_REDIS_URL": acl_server.url(role)})
    wait_for(lambda: admin.exists(keys.manager_lease()) and admin.hlen(keys.exec_executors()) == 1,
             what="the manager to lead and the executor to beat")

    def as_(name: str, *args: str) -> subprocess.CompletedProcess:
        return _cli(acl_server, name, *args, password=f"pw-{name}", home=tmp_path)

    running = as_("alice", "submit", "--", "sleep", "60")
    assert running.returncode == 0, running.stderr
    [running_id] = [parse_job_id(running.stdout)]
    [held_id] = [parse_job_id(as_("alice", "submit", "--urgency", "0", "--", "true").stdout)]
    claimed = client.submit(acl_server.login("alice", "pw-alice"), [make_jobspec(command=["true"])], userid=1001)
    wait_for(lambda: "start" in names(admin, running_id), what="alice's job to start")
    wait_for(lambda: {eventlog(admin, job_id)[0].userid for job_id in (running_id, held_id, *claimed)} == {1000},
             what="every job posted, as alice's")  # the last submitted may be posted after the first starts

    denied = as_("bob", "cancel", f58(running_id))
    assert denied.returncode == 1 and "not the job's owner" in denied.stderr
    assert as_("bob", "urgency", f58(held_id), "default").returncode == 1
    bob = acl_server.login("bob", "pw-bob")
    with pytest.raises(redis_lib.exceptions.NoPermissionError):
        bob.set(keys.proof("alice", "forged"), "x")  # bob cannot prove as alice
    forged = messages.Cancel(ids=[running_id], userid=1000, user="alice", proof="forged", reply_to="r1")
    with pytest.raises(redis_lib.exceptions.NoPermissionError):
        inbox.send(bob, forged)  # people may not write the inbox (nor trim others' requests away)
    with pytest.raises(redis_lib.exceptions.NoPermissionError):
        bob.xtrim(keys.manager_inbox(), maxlen=0)
    forward.enqueue(bob, forged)  # through an ingest worker, as every person's request goes
    wait_for(lambda: admin.exists(keys.reply("r1", "alice")), what="the manager to answer the forged request")
    assert b"not authenticated" in admin.lpop(keys.reply("r1", "alice"))
    assert names(admin, running_id)[-1] == "start"

    assert as_("alice", "urgency", f58(held_id), "default").returncode == 0
    assert as_("alice", "cancel", f58(running_id)).returncode == 0
    wait_for(lambda: names(admin, running_id)[-1] == "clean" and names(admin, held_id)[-1] == "clean")
    listed = _cli(acl_server, "reader", "jobs", "-A", "-a", "-n", "-o", "{id.f58} {userid}", home=tmp_path)
    deadline = time.monotonic() + 30
    while len(listed.stdout.split()) < 6 and time.monotonic() < deadline:
        listed = _cli(acl_server, "reader", "jobs", "-A", "-a", "-n", "-o", "{id.f58} {userid}", home=tmp_path)
    assert sorted(listed.stdout.split()[1::2]) == ["1000"] * 3, listed.stderr
    waited = _cli(acl_server, "reader", "job", "wait", f58(running_id), home=tmp_path)
    assert waited.returncode == 125, waited.stderr  # canceled
    assert _cli(acl_server, "reader", "job", "output", f58(running_id), home=tmp_path).returncode == 0
    assert _cli(acl_server, "reader", "job", "show", f58(running_id), home=tmp_path).returncode == 0
    if acl_server.acl_file.name == "users-redis7.acl":  # a person reads (only) the view and eventlogs too
        mine = as_("alice", "jobs", "-A", "-a", "-n", "-o", "{userid}")
        assert mine.stdout.split() == ["1000"] * 3, mine.stderr
        assert as_("alice", "job", "wait", f58(claimed[0])).returncode == 0


def test_with_redis_7_roles_cannot_change_what_they_only_read(acl_server):
    if acl_server.acl_file.name != "users-redis7.acl":
        pytest.skip("read-only key patterns need users-redis7.acl on Redis 7")
    refused = redis_lib.exceptions.NoPermissionError
    for role, write in (("lister", lambda r: r.xadd(keys.LEGACY.journal(), {"name": "forged"})),
                        ("lister", lambda r: r.set(keys.layout(), "{}")),
                        ("executor", lambda r: r.xadd(keys.LEGACY.job_eventlog(1), {"name": "forged"})),
                        ("submitter", lambda r: r.hset(keys.LEGACY.view_jobs(1), 1, "{}")),
                        ("submitter", lambda r: r.xrange(keys.manager_inbox())),
                        ("worker", lambda r: r.hset(keys.users(), "mallory", 0)),
                        ("reader", lambda r: r.set(keys.LEGACY.view_current(), 2))):
        with pytest.raises(refused):
            write(acl_server.login(role))
