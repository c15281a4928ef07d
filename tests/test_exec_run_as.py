"""Who a job runs as: with JOBJOURNAL_EXEC_RUN_AS=owner an executor (root) runs each job as its
owner, who cannot read the executor's environment or memory; a job of root is refused; an executor
that cannot switch users does not start; and `jobjournal submit` leaves the submitter's Redis
credentials out of the job's environment unless a rule names them."""

import contextlib
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import msgspec
import pytest

from jobjournal.common import events as ev
from jobjournal.common import keys
from jobjournal.common.connection import connect_url
from jobjournal.common.errors import JobJournalError, RedisUnavailable
from jobjournal.common.ids import f58, parse_job_id
from jobjournal.common.jobspec import make_jobspec
from jobjournal.common.output import Capture
from jobjournal.common.settings import Settings
from jobjournal.manager import client, exec_dispatch
from jobjournal.manager.executor import check_run_as, missing_capabilities
from jobjournal.manager.job_process import JobProcess, RunAs
from tests.conftest import ROOT
from tests.helpers import eventlog, names, part_of, process_log, submit, wait_for, wait_inactive

pytestmark = pytest.mark.timeout(90)

MARKER = "JJ_TEST_EXECUTOR_MARKER"
"""A variable only the executor's environment holds."""

as_root = pytest.mark.skipif(os.geteuid() != 0, reason="runs jobs as other users: the tests must run as root")


def _free_uid() -> int:
    """A uid no passwd entry names."""
    uid = 42420
    while True:
        try:
            pwd.getpwuid(uid)
        except KeyError:
            return uid
        uid += 1


def _user_uid() -> int:
    """A uid with a passwd entry (other than root): 1000 if it has one, else nobody's."""
    for uid in (1000, 65534):
        with contextlib.suppress(KeyError):
            return pwd.getpwuid(uid).pw_uid
    pytest.skip("no passwd entry for uid 1000 or 65534")


def _executor(redis, spawn, **settings):
    marker = secrets.token_hex(8)
    env = {MARKER: marker, **{f"JOBJOURNAL_{name.upper()}": value for name, value in settings.items()}}
    executor = spawn("executor", env=env)
    wait_for(lambda: redis.hlen(keys.exec_executors()) == 1, what="the executor to register")
    executor.marker = marker
    return executor


@pytest.fixture
def owner_executor(redis, start_manager, spawn):
    """A manager of the process backend and one executor, root, running jobs as their owners."""
    start_manager(exec_backend="process")
    return _executor(redis, spawn, exec_run_as="owner", identity="acl")


@pytest.fixture
def shared_dir():
    """A directory every user may enter (pytest's are root's alone), removed after the test."""
    path = Path(tempfile.mkdtemp(prefix="jj-run-as-", dir="/tmp"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _output(redis, job_id) -> dict[str, str]:
    found = {"stdout": b"", "stderr": b""}
    for chunk in client.job_output(redis, job_id):
        if hasattr(chunk, "stream"):
            found[chunk.stream] += chunk.data
    return {stream: data.decode() for stream, data in found.items()}


def _exception(redis, job_id) -> ev.Exception_:
    return next(e for e in eventlog(redis, job_id) if isinstance(e, ev.Exception_))


def _status(redis, job_id) -> int:
    return next(e for e in eventlog(redis, job_id) if isinstance(e, ev.Finish)).status


@as_root
def test_with_run_as_owner_a_job_runs_as_its_owner_with_the_owners_groups(redis, owner_executor):
    with_entry = _user_uid()
    ids = "id -u; id -g; id -G; pwd; grep -E '^Cap(Prm|Eff|Amb):' /proc/self/status"
    [known] = submit(redis, userid=with_entry, command=["sh", "-c", ids])
    wait_inactive(redis, [known])
    entry = pwd.getpwuid(with_entry)
    groups = sorted(set(os.getgrouplist(entry.pw_name, entry.pw_gid)))
    lines = _output(redis, known)["stdout"].splitlines()
    assert lines[:2] == [str(with_entry), str(entry.pw_gid)] and sorted(map(int, lines[2].split())) == groups
    assert lines[3] == "/"  # no working directory given: / (not the executor's)
    no_capabilities = [f"Cap{kind}:\t0000000000000000" for kind in ("Prm", "Eff", "Amb")]
    assert lines[4:] == no_capabilities  # none of root's: it cannot become anyone else
    assert _status(redis, known) == 0  # reported to the manager as ever


@as_root
def test_a_job_of_a_uid_without_a_passwd_entry_is_refused_in_owner_mode(redis, owner_executor, shared_dir):
    # it has no group of its own: gid = uid might be a system group's (as Flux's IMP, refused)
    ran = shared_dir / "ran"
    without_entry = _free_uid()
    [job_id] = submit(redis, userid=without_entry, command=["touch", str(ran)], cwd="/")
    wait_inactive(redis, [job_id])
    exception = _exception(redis, job_id)
    assert exception.type == "exec" and f"uid {without_entry} has no passwd entry" in exception.note
    assert "start" not in names(redis, job_id) and not ran.exists()


@as_root
def test_a_job_run_as_its_owner_gets_exactly_its_environment_and_none_of_it_acts_as_root(redis, owner_executor,
                                                                                        shared_dir):
    # the root helper that starts it does not run with the job's environment: no LD_PRELOAD,
    # PYTHONPATH of the owner's acts on it, and it adds nothing (Python's locale coercion, say)
    (shared_dir / "sitecustomize.py").write_text(f"open({str(shared_dir / 'imported')!r}, 'w')\n")
    environment = {"LD_PRELOAD": str(shared_dir / "no-such.so"), "PYTHONPATH": str(shared_dir),
                   "PYTHONSTARTUP": str(shared_dir / "sitecustomize.py"), "PATH": "/usr/bin:/bin", "A": "b=c"}
    [job_id] = submit(redis, command=["env"], environment=environment)
    wait_inactive(redis, [job_id])
    output = _output(redis, job_id)
    expected = {**environment, "JOBJOURNAL_JOB_ID": f58(job_id)}
    assert sorted(output["stdout"].splitlines()) == sorted(f"{name}={value}" for name, value in expected.items())
    assert output["stderr"].count("LD_PRELOAD cannot be preloaded") == 1  # env's own, not the helper's
    assert not (shared_dir / "imported").exists() and _status(redis, job_id) == 0


@as_root
def test_a_job_run_as_its_owner_cannot_read_the_executors_environment_or_memory(redis, owner_executor):
    proc = f"/proc/{owner_executor.pid}"
    [job_id] = submit(redis, command=["sh", "-c", f"echo parent=$PPID; cat {proc}/environ; head -c 64 {proc}/mem"])
    wait_inactive(redis, [job_id])
    output = _output(redis, job_id)
    assert output["stdout"].splitlines()[0] == f"parent={owner_executor.pid}"  # the executor is its parent
    assert owner_executor.marker not in output["stdout"] + output["stderr"]
    assert f"{proc}/environ: Permission denied" in output["stderr"]
    assert f"{proc}/mem" in output["stderr"] and "Permission denied" in output["stderr"].split(f"{proc}/mem")[1]


@as_root
def test_with_run_as_executor_a_job_can_read_the_executors_environment(redis, start_manager, spawn):
    # the single-user default: every job has the executor's rights (docs/guarantees.md says so)
    start_manager(exec_backend="process")
    executor = _executor(redis, spawn)
    [job_id] = submit(redis, command=["sh", "-c", f"tr '\\0' '\\n' < /proc/{executor.pid}/environ"])
    wait_inactive(redis, [job_id])
    assert f"{MARKER}={executor.marker}" in _output(redis, job_id)["stdout"].splitlines()


@as_root
def test_a_job_of_uid_0_is_refused_in_owner_mode_with_its_reason(redis, owner_executor, shared_dir):
    ran = shared_dir / "ran"
    [job_id] = submit(redis, userid=0, command=["touch", str(ran)])
    wait_inactive(redis, [job_id])
    exception = _exception(redis, job_id)
    assert exception.type == "exec" and "uid 0 (root) is not run as root" in exception.note
    assert "JOBJOURNAL_EXEC_ALLOW_ROOT" in exception.note
    assert "start" not in names(redis, job_id) and not ran.exists()
    [after] = submit(redis, command=["true"])  # the executor goes on
    wait_inactive(redis, [after])
    assert _status(redis, after) == 0


@as_root
def test_with_exec_allow_root_a_job_of_uid_0_runs_as_root(redis, start_manager, spawn):
    start_manager(exec_backend="process")
    _executor(redis, spawn, exec_run_as="owner", identity="acl", exec_allow_root="1")
    [job_id] = submit(redis, userid=0, command=["id", "-u"])
    wait_inactive(redis, [job_id])
    assert _output(redis, job_id)["stdout"] == "0\n"


@as_root
def test_a_job_whose_owner_may_not_enter_its_directory_or_run_its_command_ends_saying_so(
        redis, owner_executor, shared_dir, tmp_path):
    script = shared_dir / "roots-only"
    script.write_text("#!/bin/sh\ntrue\n")
    script.chmod(0o700)
    private = tmp_path / "private"  # pytest's directories are root's alone (mode 700 above them)
    private.mkdir()
    [in_private] = submit(redis, command=["true"], cwd=str(private))
    [not_theirs] = submit(redis, command=[str(script)], cwd="/")
    wait_inactive(redis, [in_private, not_theirs])
    exception = _exception(redis, in_private)
    assert exception.type == "exec"
    assert exception.note.startswith("cannot run true as uid 1000:") and "Permission denied" in exception.note
    assert str(private) in exception.note
    exception = _exception(redis, not_theirs)
    assert exception.type == "exec" and f"cannot run {script} as uid 1000" in exception.note
    assert "Permission denied" in exception.note
    assert not {"start", "finish"} & {*names(redis, in_private), *names(redis, not_theirs)}


@as_root
def test_canceling_a_job_run_as_its_owner_kills_it(redis, owner_executor):
    [job_id] = submit(redis, command=["sleep", "30"])
    wait_for(lambda: "start" in names(redis, job_id))
    assert client.cancel(redis, [job_id], userid=1000) == {}
    wait_inactive(redis, [job_id])
    assert _exception(redis, job_id).type == "cancel" and _status(redis, job_id) == 15  # SIGTERM


@as_root
def test_a_job_run_as_its_owner_dies_with_its_executor(redis, owner_executor):
    # the helper asks for it once it has the owner's uid (a change of ids clears PR_SET_PDEATHSIG)
    [job_id] = submit(redis, command=["sh", "-c", "echo $$; exec sleep 30"])
    wait_for(lambda: "start" in names(redis, job_id) and _output(redis, job_id)["stdout"])
    pid = int(_output(redis, job_id)["stdout"])
    os.killpg(owner_executor.pid, signal.SIGKILL)
    wait_for(lambda: _gone(pid), what="the command to die with its executor")


def _gone(pid: int) -> bool:
    """The process has exited (it may linger as a zombie until its new parent reaps it)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


@as_root
def test_an_executor_asked_to_run_jobs_as_their_owners_that_is_not_root_refuses_to_start_saying_why(redis_url,
                                                                                                   tmp_path):
    # the interpreter lives under /root, which nobody may enter: it starts as root, loads what the
    # command needs, then becomes nobody (no capabilities left) and runs `jobjournal executor`
    become_nobody = ("import os, sys; from jobjournal.cli import main; import jobjournal.manager.executor; "
                     "os.setgroups([]); os.setgid(65534); os.setuid(65534); sys.argv[0] = 'jobjournal'; "
                     "main(['executor'])")
    env = {"PATH": os.environ["PATH"], "JOBJOURNAL_EXEC_RUN_AS": "owner", "JOBJOURNAL_IDENTITY": "acl",
           "JOBJOURNAL_REDIS_URL": redis_url, "JOBJOURNAL_HOME": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", become_nobody], env=env, cwd=ROOT, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 1, done.stderr
    assert done.stderr.splitlines() == [
        "Error: JOBJOURNAL_EXEC_RUN_AS=owner: this executor cannot start jobs as their owners: it runs as uid 65534, "
        "not root (run it as root, or set JOBJOURNAL_EXEC_RUN_AS=executor to run every job as this user)"]


def test_only_an_executor_run_as_owner_must_be_root_with_the_capabilities_to_switch_users():
    owner = Settings(exec_run_as="owner", identity="acl")
    check_run_as(owner, euid=0, status="Name:\tx\nCapEff:\t000001ffffffffff\n")
    check_run_as(Settings(), euid=999)  # run as the executor: nothing to check
    with pytest.raises(JobJournalError, match="it runs as uid 999, not root"):
        check_run_as(owner, euid=999)
    with pytest.raises(JobJournalError, match="runs as root without CAP_SETGID, CAP_SETUID, so it cannot"):
        check_run_as(owner, euid=0, status="CapEff:\t0000000000000020\n")  # CAP_KILL alone (a container's root)
    assert missing_capabilities("CapEff:\t00000000000000c0\n") == ["CAP_KILL"]


@pytest.fixture
def ingest_worker(spawn):
    return spawn("worker")


@pytest.fixture
def with_password(redis_url) -> str:
    """The URL of the Redis under test with a password in it."""
    parts = urlsplit(redis_url)
    if parts.password:
        return redis_url
    url = urlunsplit(parts._replace(netloc=f"default:{secrets.token_hex(8)}@{parts.netloc}"))
    try:  # the default user takes any password (nopass)
        connect_url(url).close()
    except RedisUnavailable:
        pytest.skip("the Redis under test refuses a login with a password")
    return url


def test_an_executor_that_runs_jobs_as_itself_with_a_redis_password_warns_at_start(redis, spawn, with_password):
    executor = spawn("executor", env={"JOBJOURNAL_REDIS_URL": with_password})
    wait_for(lambda: redis.hlen(keys.exec_executors()) == 1, what="the executor to register")
    log = wait_for(lambda: "WARNING" in process_log(executor) and process_log(executor))
    assert "so it can read this executor's Redis password" in log and "JOBJOURNAL_EXEC_RUN_AS=owner" in log


def test_submit_leaves_out_a_redis_url_with_a_password_unless_a_rule_names_it(redis, with_password, start_manager,
                                                                            ingest_worker, cli, monkeypatch):
    monkeypatch.setenv("JOBJOURNAL_REDIS_URL", with_password)
    start_manager()
    default = parse_job_id(cli("submit", "--", "true").output)
    by_glob = parse_job_id(cli("submit", "--env", "JOBJOURNAL_*", "--", "true").output)
    by_name = parse_job_id(cli("submit", "--env", "JOBJOURNAL_REDIS_URL", "--", "true").output)
    wait_inactive(redis, [default, by_glob, by_name])

    def environment(job_id):
        return msgspec.json.decode(redis.get(part_of(redis, job_id).job_environment(job_id)))

    assert "JOBJOURNAL_REDIS_URL" not in environment(default) and environment(default)["PATH"] == os.environ["PATH"]
    assert "JOBJOURNAL_REDIS_URL" not in environment(by_glob) and "JOBJOURNAL_HOME" in environment(by_glob)
    assert environment(by_name)["JOBJOURNAL_REDIS_URL"] == with_password


def test_an_executor_refuses_to_run_jobs_as_their_owners_when_uids_are_only_stated():
    with pytest.raises(JobJournalError, match="needs JOBJOURNAL_IDENTITY=acl"):
        check_run_as(Settings(exec_run_as="owner"), euid=0, status="CapEff:\t00000000000000e0\n")


def _running_uids() -> set[int]:
    """The real uids of the processes running now."""
    found = set()
    for pid in filter(str.isdigit, os.listdir("/proc")):
        with contextlib.suppress(OSError):
            status = Path(f"/proc/{pid}/status").read_text()
            found.add(int(next(line for line in status.splitlines() if line.startswith("Uid:")).split()[1]))
    return found


@pytest.fixture
def idle_uids():
    """Two uids with passwd entries (not root) that run no process now: everything of theirs is
    killed after the test (a job that stops its owner's processes leaves them stopped)."""
    busy = _running_uids()
    entries = sorted((entry.pw_uid for entry in pwd.getpwall() if entry.pw_uid not in busy and entry.pw_uid != 0),
                     key=lambda uid: (uid not in (1000, 65534), uid))
    if len(entries) < 2:
        pytest.skip("fewer than two users with passwd entries and no process running")
    uids = entries[:2]
    yield uids
    for uid in uids:
        subprocess.run(["pkill", "-KILL", "-u", str(uid)], check=False)
    wait_for(lambda: not set(uids) & _running_uids(), what="the test users' processes to be gone")


def _beat(redis) -> float:
    [raw] = redis.hvals(keys.exec_executors())
    return msgspec.json.decode(raw)["beat"]


@as_root
def test_a_job_that_stops_its_owners_processes_does_not_freeze_the_executor(redis, owner_executor, idle_uids):
    # the owner may stop whatever runs with their uid (kill -STOP -1): the executor waits on
    # nothing of theirs, so other jobs run and end, time limits and cancels still act
    alice, bob = idle_uids
    [stopper] = submit(redis, userid=alice, command=["sh", "-c", "while :; do kill -STOP -1 2>/dev/null; done"])
    wait_for(lambda: "start" in names(redis, stopper), what="the stopper to start")
    # alice's: stopped by it, as their start helper or once running; their time limit ends them
    alices = submit(redis, 3, userid=alice, command=["sleep", "30"], duration=1)
    [bobs_long] = submit(redis, userid=bob, command=["sleep", "30"], duration=1)
    [bobs] = submit(redis, userid=bob, command=["true"])
    beat = _beat(redis)
    wait_inactive(redis, [*alices, bobs_long, bobs])
    assert _status(redis, bobs) == 0
    assert [_exception(redis, job_id).type for job_id in [bobs_long, *alices]] == ["timeout"] * 4
    wait_for(lambda: _beat(redis) > beat + 1, what="the executor to beat on")
    assert len(exec_dispatch.live_executors(redis)) == 1  # as `jobjournal status` counts them
    assert client.cancel(redis, [stopper], userid=alice) == {}
    wait_inactive(redis, [stopper])
    assert _exception(redis, stopper).type == "cancel"
    [after] = submit(redis, userid=alice, command=["true"])  # the stopper is gone: alice's jobs run again
    wait_inactive(redis, [after])
    assert _status(redis, after) == 0


def _end(process: JobProcess, timeout: float = 10) -> None:
    """Run the executor's part for one process until it is done: read its pipes, then drain them."""
    deadline = time.monotonic() + timeout
    while not process.done:
        assert time.monotonic() < deadline, "the process did not end"
        for pipe in process.watched():
            if not process.read(pipe):
                process.close(pipe)
        time.sleep(0.01)
    for pipe in process.watched():
        process.drain(pipe)


@as_root
def test_a_start_helper_stopped_before_the_exec_never_holds_the_executor_and_is_not_taken_for_a_start(shared_dir):
    # Popen returns while the helper is still root; stopped later (by its owner, once it has their
    # uid), nothing the executor does waits on it, and killed it is known not to have run the command
    ran = shared_dir / "ran"
    spec = make_jobspec(command=["touch", str(ran)])
    process = JobProcess(1, spec, {"PATH": "/usr/bin:/bin"}, Capture("k", 1000), run_as=RunAs.of(_user_uid()))
    os.kill(process.process.pid, signal.SIGSTOP)  # it takes some 10 ms to reach the exec
    assert not process.done and all(process.read(pipe) for pipe in process.watched())  # nothing yet, no wait
    if process.ran:
        process.reap()
        pytest.skip("the machine let the helper reach its exec before it was stopped")
    process.reap()  # the executor's kill of the job's session, as root
    _end(process)
    assert not process.ran and process.failure is None and process.process.returncode == -signal.SIGKILL
    assert not ran.exists()


@as_root
def test_a_start_helper_reports_why_the_command_could_not_run(shared_dir):
    process = JobProcess(1, make_jobspec(command=["no-such-command-here"], cwd=str(shared_dir)), {},
                         Capture("k", 1000), run_as=RunAs.of(_user_uid()))
    _end(process)
    assert not process.ran and process.failure == "[Errno 2] No such file or directory: 'no-such-command-here'"
    process = JobProcess(2, make_jobspec(command=["sh", "-c", "exit 3"], cwd=str(shared_dir)), {},
                         Capture("k", 1000), run_as=RunAs.of(_user_uid()))
    _end(process)
    assert process.ran and process.failure is None and process.wait_status() == 3 << 8
