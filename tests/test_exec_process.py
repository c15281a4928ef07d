"""The process exec backend: executors run real commands, several at once, with their exit
statuses, output and environment; the manager dispatches only to live executors."""

import os
import signal
from pathlib import Path

import pytest

from jobjournal.common import events as ev
from jobjournal.common import keys
from jobjournal.common.ids import f58
from jobjournal.common.jobspec import make_jobspec
from jobjournal.manager import client
from tests.helpers import eventlog, names, part_of, submit, wait_for, wait_inactive

pytestmark = pytest.mark.timeout(90)


@pytest.fixture
def executing(redis, start_manager, spawn):
    """A manager of the process backend and one executor, running."""
    start_manager(exec_backend="process")
    executor = spawn("executor")
    wait_for(lambda: redis.hlen(keys.exec_executors()) == 1, what="the executor to register")
    return executor


def _finish(redis, job_id) -> ev.Finish:
    return next(e for e in eventlog(redis, job_id) if isinstance(e, ev.Finish))


def _exception(redis, job_id) -> ev.Exception_:
    return next(e for e in eventlog(redis, job_id) if isinstance(e, ev.Exception_))


def _event(redis, job_id, name: str) -> ev.Event:
    return next(e for e in eventlog(redis, job_id) if ev.event_name(e) == name)


def _output(redis, job_id) -> dict[str, bytes]:
    found = {"stdout": b"", "stderr": b""}
    for chunk in client.job_output(redis, job_id):
        if hasattr(chunk, "stream"):
            found[chunk.stream] += chunk.data
    return found


def test_a_real_command_runs_with_exactly_its_environment_and_exit_status(redis, executing, tmp_path):
    [ok] = submit(redis, command=["sh", "-c", 'echo "$GREETING"; env | sort'], environment={"GREETING": "hi"})
    [failing] = submit(redis, command=["sh", "-c", "exit 3"], cwd=str(tmp_path))
    wait_inactive(redis, [ok, failing])
    lines = _output(redis, ok)["stdout"].decode().splitlines()
    assert lines[0] == "hi"
    assert not any(line.startswith("JOBJOURNAL_REDIS_URL=") for line in lines)  # not the executor's
    assert f"JOBJOURNAL_JOB_ID={f58(ok)}" in lines
    assert _finish(redis, ok).status == 0
    assert _finish(redis, failing).status == 3 << 8
    assert names(redis, ok) == [
        "submit", "validate", "depend", "priority", "alloc", "start", "finish", "release", "free", "clean"
    ]


def test_jobs_run_at_the_same_time_up_to_the_executors_slots(redis, executing, tmp_path):
    # each job waits until all three have started: they can only finish if they ran at once
    barrier = f'touch {tmp_path}/$JOBJOURNAL_JOB_ID; until [ "$(ls {tmp_path} | wc -l)" -ge 3 ]; do sleep 0.05; done'
    job_ids = submit(redis, count=3, command=["sh", "-c", barrier], duration=60)
    wait_inactive(redis, job_ids, timeout=90)
    assert [_finish(redis, job_id).status for job_id in job_ids] == [0, 0, 0]


def test_an_executor_runs_no_more_jobs_at_once_than_its_slots(redis, start_manager, spawn):
    start_manager(exec_backend="process")
    spawn("executor", "--slots", "1")
    job_ids = submit(redis, count=3, command=["sleep", "0.3"])
    wait_inactive(redis, job_ids)
    spans = sorted((_event(redis, j, "start").timestamp, _event(redis, j, "finish").timestamp) for j in job_ids)
    assert all(spans[i][1] <= spans[i + 1][0] for i in range(2))  # one after the other


def test_two_executors_of_one_slot_each_run_two_jobs_at_once_and_the_third_waits(redis, start_manager, spawn,
                                                                                  tmp_path):
    start_manager(exec_backend="process")
    for _ in range(2):
        spawn("executor", "--slots", "1")
    wait_for(lambda: redis.hlen(keys.exec_executors()) == 2, what="both executors to register")
    go = tmp_path / "go"
    job_ids = submit(redis, count=3, command=["sh", "-c", f"while [ ! -e {go} ]; do sleep 0.05; done"])
    wait_for(lambda: sum("start" in names(redis, j) for j in job_ids) == 2, what="two jobs to start")
    [waiting] = [j for j in job_ids if "start" not in names(redis, j)]
    assert names(redis, waiting)[-1] == "priority"  # SCHED: no slot free on either executor
    takers = {redis.get(keys.exec_taken(j)) for j in job_ids if j != waiting}
    assert len(takers) == 2  # one job on each executor
    go.touch()
    wait_inactive(redis, job_ids)
    assert all(_finish(redis, j).status == 0 for j in job_ids)


def test_without_an_executor_a_job_waits_pending_and_runs_once_one_starts(redis, start_manager, spawn):
    start_manager(exec_backend="process")
    [waiting] = submit(redis, command=["true"])
    [other] = submit(redis, command=["true"], urgency=0)  # held: a later request the manager must handle
    assert client.set_urgency(redis, other, 0, userid=1000) == {}  # answered, so `waiting` was seen
    assert names(redis, waiting)[-1] == "priority"  # SCHED: not allocated, not R forever
    spawn("executor")
    wait_inactive(redis, [waiting])
    assert _finish(redis, waiting).status == 0


def test_a_submission_is_not_queued_behind_a_running_job(redis, start_manager, spawn):
    start_manager(exec_backend="process")
    spawn("executor")
    spawn("worker")
    [long] = client.submit(redis, [make_jobspec(command=["sleep", "60"])])
    wait_for(lambda: "start" in names(redis, long))
    [short] = client.submit(redis, [make_jobspec(command=["true"])], timeout=20)
    wait_inactive(redis, [short])
    assert "finish" not in names(redis, long)


def test_a_command_past_its_time_limit_is_killed_with_a_timeout_exception(redis, executing):
    [job_id] = submit(redis, command=["sleep", "30"], duration=0.5)
    wait_inactive(redis, [job_id])
    assert _exception(redis, job_id).type == "timeout"
    assert _finish(redis, job_id).status == signal.SIGTERM


def test_canceling_a_running_command_kills_it(redis, executing):
    [job_id] = submit(redis, command=["sleep", "30"])
    wait_for(lambda: "start" in names(redis, job_id))
    assert client.cancel(redis, [job_id], userid=1000) == {}
    wait_inactive(redis, [job_id])
    assert _exception(redis, job_id).type == "cancel"
    assert _finish(redis, job_id).status == signal.SIGTERM


def test_a_command_that_cannot_start_ends_with_an_exec_exception(redis, executing):
    [job_id] = submit(redis, command=["/nonexistent/program"])
    wait_inactive(redis, [job_id])
    exception = _exception(redis, job_id)
    assert exception.type == "exec" and "cannot run /nonexistent/program" in exception.note
    assert "finish" not in names(redis, job_id)


def test_a_job_whose_executor_dies_ends_with_an_exception_and_its_command_with_it(redis, executing, tmp_path):
    pidfile = tmp_path / "pid"
    [job_id] = submit(redis, command=["sh", "-c", f"echo $$ > {pidfile}; exec sleep 30"])
    wait_for(lambda: "start" in names(redis, job_id) and pidfile.exists() and pidfile.read_text())
    os.killpg(executing.pid, signal.SIGKILL)
    wait_inactive(redis, [job_id])
    exception = _exception(redis, job_id)
    assert exception.type == "exec" and "executor lost" in exception.note
    pid = int(pidfile.read_text())
    wait_for(lambda: _gone(pid), what="the command to die with its executor")


def _gone(pid: int) -> bool:
    """The process has exited (it may linger as a zombie until its new parent reaps it)."""
    stat = Path(f"/proc/{pid}/stat")
    return not stat.exists() or stat.read_text().rsplit(")", 1)[1].split()[0] == "Z"


def test_output_is_kept_capped_and_purged_with_the_job(redis, start_manager, spawn):
    start_manager(exec_backend="process")
    spawn("executor", env={"JOBJOURNAL_OUTPUT_MAX_BYTES": "1000"})
    [small] = submit(redis, command=["sh", "-c", "echo out; echo err >&2"])
    [big] = submit(redis, command=["sh", "-c", "head -c 5000 /dev/zero"])
    wait_inactive(redis, [small, big])
    assert _output(redis, small) == {"stdout": b"out\n", "stderr": b"err\n"}
    entries = list(client.job_output(redis, big))
    assert sum(len(e.data) for e in entries if hasattr(e, "data")) == 1000
    assert entries[-1].dropped == 4000
    client.purge(redis, [small, big], force=True)
    assert not redis.exists(part_of(redis, small).job_output(small), part_of(redis, big).job_output(big))


def test_output_can_be_followed_while_the_job_runs(redis, executing, tmp_path):
    go = tmp_path / "go"
    [job_id] = submit(redis, command=["sh", "-c", f"echo first; while [ ! -e {go} ]; do sleep 0.05; done; echo second"])
    followed = client.job_output(redis, job_id, follow=True)
    assert next(followed).data == b"first\n"  # while it runs
    go.touch()
    assert [e.data for e in followed if hasattr(e, "data")] == [b"second\n"]


def test_a_restarted_manager_with_a_smaller_pool_ends_a_job_whose_cores_it_lacks(redis, start_manager, spawn):
    first = start_manager(exec_backend="process", nodes=4, cores_per_node=1)
    spawn("executor")
    [wide] = submit(redis, command=["sleep", "60"], ntasks=4)
    wait_for(lambda: "start" in names(redis, wide))
    first.stop.set()
    wait_for(lambda: not first.leading.is_set())
    start_manager(exec_backend="process", nodes=2, cores_per_node=1)
    wait_inactive(redis, [wide])
    exception = _exception(redis, wide)
    assert exception.type == "exec" and "not in the pool" in exception.note
    [after] = submit(redis, command=["true"])  # the manager goes on
    wait_inactive(redis, [after])


def test_a_restarted_manager_of_another_backend_ends_the_jobs_the_old_one_started(redis, start_manager, spawn):
    first = start_manager(exec_backend="process")
    spawn("executor")
    [job_id] = submit(redis, command=["sleep", "60"])
    wait_for(lambda: "start" in names(redis, job_id))
    first.stop.set()
    wait_for(lambda: not first.leading.is_set())
    start_manager(exec_backend="sim")
    wait_inactive(redis, [job_id])
    assert "process exec backend" in _exception(redis, job_id).note


def test_a_command_that_cannot_run_with_an_error_past_a_notes_length_still_ends_its_job(redis, executing):
    [job_id] = submit(redis, command=["/nonexistent/" + "x" * 5000])  # the error names the path
    wait_inactive(redis, [job_id])
    exception = _exception(redis, job_id)
    assert exception.type == "exec" and len(exception.note) <= 4096 and exception.note.endswith("...")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_a_restarted_manager_of_another_backend_and_a_smaller_pool_kills_the_commands_it_ends(
        redis, start_manager, spawn, tmp_path):
    first = start_manager(exec_backend="process", nodes=4, cores_per_node=1)
    spawn("executor")
    pidfiles = [tmp_path / f"pid{n}" for n in range(4)]
    jobs = [submit(redis, command=["sh", "-c", f"echo $$ > {pidfile}; exec sleep 60"])[0] for pidfile in pidfiles]
    wait_for(lambda: all(pidfile.exists() and pidfile.read_text().strip() for pidfile in pidfiles))
    pids = [int(pidfile.read_text()) for pidfile in pidfiles]
    first.stop.set()
    wait_for(lambda: not first.leading.is_set())
    start_manager(exec_backend="sim", nodes=1, cores_per_node=1)
    wait_for(lambda: sum(_alive(pid) for pid in pids) == 0, what="every command of the old backend to be killed")
    ended = [job for job in jobs if "not in the pool" in getattr(_exception(redis, job), "note", "")]
    assert len(ended) == 3  # the one on rank 0 fits, but the process backend ran it: it ends too
    assert all("exception" in names(redis, job) for job in jobs)


def test_a_dispatch_no_executor_took_is_withdrawn_when_a_manager_of_another_backend_takes_over(
        redis, start_manager, spawn, tmp_path):
    first = start_manager(exec_backend="process")
    executor = spawn("executor")
    wait_for(lambda: redis.hlen(keys.exec_executors()) == 1, what="the executor to register")
    os.kill(executor.pid, signal.SIGSTOP)  # registered, with a free slot, but it takes nothing
    marker = tmp_path / "ran"
    [job_id] = submit(redis, command=["touch", str(marker)])
    wait_for(lambda: "alloc" in names(redis, job_id) and redis.xlen(keys.exec_dispatch()) == 1)
    first.stop.set()
    wait_for(lambda: not first.leading.is_set())
    start_manager(exec_backend="sim")
    wait_inactive(redis, [job_id])  # the simulator runs it: it had not started
    assert _finish(redis, job_id).status == 0
    os.kill(executor.pid, signal.SIGCONT)
    wait_for(lambda: any(b"taken by an executor before" in fields.get(b"reason", b"")
                         for _, fields in redis.xrange(keys.dead_letters())), what="the executor to refuse it")
    assert not marker.exists()


def test_a_restarted_manager_ends_jobs_whose_executor_is_gone(redis, start_manager, spawn, tmp_path):
    first = start_manager(exec_backend="process")
    executor = spawn("executor")
    [job_id] = submit(redis, command=["sleep", "60"])
    wait_for(lambda: "start" in names(redis, job_id))
    first.stop.set()
    wait_for(lambda: not first.leading.is_set())
    os.killpg(executor.pid, signal.SIGKILL)
    start_manager(exec_backend="process")
    wait_inactive(redis, [job_id])
    exception = _exception(redis, job_id)
    assert exception.type == "exec" and "executor lost" in exception.note


def test_event_timestamps_of_real_jobs_never_go_backwards(redis, executing):
    job_ids = submit(redis, command=["sleep", "30"], duration=0.3) + submit(redis, command=["true"])
    wait_inactive(redis, job_ids)
    for job_id in job_ids:
        stamps = [event.timestamp for event in eventlog(redis, job_id)]
        assert stamps == sorted(stamps)


def test_a_pending_job_canceled_before_any_executor_takes_it_is_withdrawn(redis, start_manager):
    start_manager(exec_backend="process")
    [job_id] = submit(redis, command=["true"])
    assert client.cancel(redis, [job_id], userid=1000) == {}
    wait_inactive(redis, [job_id])
    assert "start" not in names(redis, job_id) and _exception(redis, job_id).type == "cancel"


def test_job_wait_exits_with_the_jobs_exit_code_or_says_how_it_ended(redis, executing, cli):
    cases = {
        "exit 0": (submit(redis, command=["sh", "-c", "exit 0"])[0], 0, ""),
        "exit 3": (submit(redis, command=["sh", "-c", "exit 3"])[0], 3, "exited with 3"),
        "signal": (submit(redis, command=["sh", "-c", "kill -9 $$"])[0], 128 + 9, "killed by signal 9"),
        "timeout": (submit(redis, command=["sleep", "30"], duration=0.3)[0], 124, "exception timeout"),
        "cannot run": (submit(redis, command=["/nonexistent"])[0], 126, "exception exec"),
    }
    for what, (job_id, code, said) in cases.items():
        result = cli("job", "wait", f58(job_id))
        assert result.exit_code == code, what
        assert said in result.output, what


def test_job_wait_for_a_canceled_job_exits_125_and_for_an_unknown_one_says_so(redis, executing, cli):
    [job_id] = submit(redis, command=["sleep", "30"])
    wait_for(lambda: "start" in names(redis, job_id))
    client.cancel(redis, [job_id], userid=1000)
    assert cli("job", "wait", f58(job_id)).exit_code == 125
    unknown = cli("job", "wait", "--timeout", "1s", "f" + "1" * 11)
    assert unknown.exit_code == 1 and "no such job" in unknown.output


def test_job_wait_that_runs_out_of_time_exits_75_and_the_job_goes_on(redis, executing, cli, tmp_path):
    go = tmp_path / "go"
    [job_id] = submit(redis, command=["sh", "-c", f"while [ ! -e {go} ]; do sleep 0.05; done"])
    wait_for(lambda: "start" in names(redis, job_id))
    result = cli("job", "wait", "--timeout", "0.5s", f58(job_id))
    assert result.exit_code == 75 and "did not become inactive within 0.5s" in result.output
    go.touch()
    assert cli("job", "wait", f58(job_id)).exit_code == 0


def test_job_output_through_the_cli_prints_each_stream_where_it_belongs(redis, executing, cli):
    [job_id] = submit(redis, command=["sh", "-c", "echo to-out; echo to-err >&2"])
    wait_inactive(redis, [job_id])
    result = cli("job", "output", f58(job_id))
    assert result.exit_code == 0 and result.stdout == "to-out\n" and result.stderr == "to-err\n"


def test_what_an_ended_command_wrote_is_kept_even_when_it_is_read_after_the_drain_time():
    from jobjournal.common.jobspec import decode_jobspec, encode
    from jobjournal.common.output import Capture
    from jobjournal.manager.job_process import DRAIN_S, JobProcess

    now = [0.0]
    spec = decode_jobspec(encode(make_jobspec(command=["sh", "-c", "echo one; echo two >&2; echo three"])))
    process = JobProcess(1, spec, {}, Capture("unused", 1 << 20), clock=lambda: now[0])
    process.process.wait()  # ended, and nothing of its pipes read yet (a slow executor turn)
    assert not process.done  # it has just been seen to end: its pipes are still read for DRAIN_S
    now[0] += DRAIN_S + 1
    assert process.done
    for pipe in list(process.pipes):
        process.drain(pipe)
    kept = {stream: b"".join(c.data for c in process.capture._pending if c.stream == stream)
            for stream in ("stdout", "stderr")}
    assert kept == {"stdout": b"one\nthree\n", "stderr": b"two\n"} and not process.pipes
