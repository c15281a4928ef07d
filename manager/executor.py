"""`jobjournal executor`: runs jobs' commands, as many at once as its slots, each as a child process.

It takes dispatches from the queue Redis (manager/exec_dispatch.py), checks each (the token must
be the manager's, the job allocated and not finished), reads the command and environment from the
job's own keys in the store, runs it (manager/job_process.py), stores its output as it comes
(common/output.py), and reports start and end through the manager's inbox. It beats in
`keys.exec_executors()` with its slots, which the manager counts before it allocates.

A dispatch delivered to an executor that died before taking it is claimed by another after
CLAIM_IDLE_MS. An executor stopped by SIGTERM or SIGINT terminates its jobs and reports their ends.

Whose rights a command has (setting exec_run_as): 'executor', the default, runs every command as the
executor's own user, which trusts every job with the executor's rights (it may read the executor's
environment and memory, its Redis credentials with them): right for one person's jobs. 'owner' runs
each command as the job's userid (job_process.RunAs), as Flux runs a guest's job through its IMP.
The executor must then be root (with CAP_SETUID, CAP_SETGID and CAP_KILL), and the uids proved
ones, JOBJOURNAL_IDENTITY=acl (`check_run_as`: else it does not start). A job of uid 0 ends with
an `exec` exception (unless exec_allow_root) instead of running with the executor's rights, as
does one whose uid has no passwd entry, or whose owner may not enter its working directory or run
its command. In owner mode a job's start is reported once its command runs (the start helper's
report pipe closes on exec: job_process.JobProcess.ran), and a failure to run it when its process
ends; the loop never waits on a job's process or pipes, which the owner may stop.
"""

from __future__ import annotations

import contextlib
import logging
import os
import selectors
import signal
import socket
import subprocess
import threading
import time
import uuid

import msgspec
import redis as redis_lib

from jobjournal.common import events as ev
from jobjournal.common import inbox, keys, messages
from jobjournal.common.deadletters import set_aside
from jobjournal.common.env_rules import url_has_password
from jobjournal.common.errors import JobJournalError
from jobjournal.common.ids import f58
from jobjournal.common.jobspec import Jobspec, decode_environment, decode_jobspec
from jobjournal.common.keys import Partition
from jobjournal.common.layout import read_layout
from jobjournal.common.output import Capture
from jobjournal.common.settings import Settings
from jobjournal.common.throttle import Throttle
from jobjournal.manager import exec_dispatch
from jobjournal.manager.job_process import KILL_GRACE, JobProcess, RunAs

log = logging.getLogger("jobjournal.executor")

TURN_S = 0.1
"""Longest wait of one loop turn while jobs run (their output, kill requests, limits)."""
IDLE_BLOCK_MS = 1000
CLAIM_IDLE_MS = 10_000
HEARTBEAT_EVERY = 0.5
HEARTBEAT_TTL = 3
BEAT_EVERY = 1.0


class Refused(JobJournalError):
    """A dispatch that is genuine but cannot run (its reason goes to the manager)."""


def _cannot_run(command: str, run_as: RunAs | None, why) -> str:
    who = f" as uid {run_as.uid}" if run_as else ""
    return f"cannot run {command}{who}: {why}"


SWITCHING_CAPABILITIES = {"CAP_KILL": 5, "CAP_SETGID": 6, "CAP_SETUID": 7}
"""What root needs to run jobs as their owners (bit numbers, linux/capability.h): to change ids,
and to signal processes of other users. A container may drop them from its root."""


def missing_capabilities(status: str | None = None) -> list[str]:
    """SWITCHING_CAPABILITIES this process lacks, from the effective set in /proc/self/status
    (`status`: its text, for tests); none where it cannot be read."""
    if status is None:
        try:
            with open("/proc/self/status") as file:
                status = file.read()
        except OSError:
            return []
    effective = next((int(line.split()[1], 16) for line in status.splitlines() if line.startswith("CapEff:")), None)
    if effective is None:
        return []
    return [name for name, bit in SWITCHING_CAPABILITIES.items() if not effective >> bit & 1]


def check_run_as(settings: Settings, euid: int | None = None, status: str | None = None) -> None:
    """JobJournalError, in one line, if the settings ask to run jobs as their owners and this
    process cannot, or should not: it must be root with SWITCHING_CAPABILITIES (a root process
    that becomes another user loses every capability, so the job cannot become anyone else; those
    given to a process that is not root would pass to its jobs), and uids must be proved ones
    (identity 'acl')."""
    if settings.exec_run_as != "owner":
        return
    uid = os.geteuid() if euid is None else euid
    if uid != 0:
        raise JobJournalError(f"JOBJOURNAL_EXEC_RUN_AS=owner: this executor cannot start jobs as their owners: it runs "
                              f"as uid {uid}, not root (run it as root, or set JOBJOURNAL_EXEC_RUN_AS=executor to run "
                              "every job as this user)")
    missing = missing_capabilities(status)
    if missing:
        raise JobJournalError(f"JOBJOURNAL_EXEC_RUN_AS=owner: this executor runs as root without {', '.join(missing)}, "
                              "so it cannot start jobs as their owners (a container that drops capabilities must keep "
                              "these)")
    if settings.identity != "acl":
        raise JobJournalError("JOBJOURNAL_EXEC_RUN_AS=owner needs JOBJOURNAL_IDENTITY=acl (here as on the manager and "
                              "the ingest workers): with identity 'trusted' a job's uid is whatever its submitter "
                              "states, so whoever reaches Redis would run commands as any user")


class Executor:
    def __init__(self, store, queues, settings: Settings, name: str | None = None):
        self.store, self.queues = store, queues
        self.slots = settings.exec_slots or settings.nodes * settings.cores_per_node
        self.max_output = settings.output_max_bytes
        self.name = name or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.running: dict[int, JobProcess] = {}
        self._starting: set[int] = set()
        """Jobs whose start is not reported yet: their command is not yet known to run."""
        self._selector = selectors.DefaultSelector()
        self._key: bytes | None = None
        self._beats, self._claims = Throttle(BEAT_EVERY), Throttle(CLAIM_IDLE_MS / 2000)
        self._alive = Throttle(HEARTBEAT_EVERY)
        check_run_as(settings)
        self.as_owner, self.allow_root = settings.exec_run_as == "owner", settings.exec_allow_root
        self._credentials = url_has_password(settings.redis_url) or url_has_password(settings.queue_redis_url)

    def run(self, stop: threading.Event) -> None:
        exec_dispatch.ensure_group(self.queues)
        self._key = exec_dispatch.secret(self.queues)
        log.info("executor %s: %d slots, jobs run as %s", self.name, self.slots,
                 "their owners" if self.as_owner else f"this executor's user (uid {os.geteuid()})")
        if not self.as_owner and self._credentials:
            log.warning("every job runs as this executor's user (JOBJOURNAL_EXEC_RUN_AS=executor), so it can read "
                        "this executor's Redis password: for several people's jobs, run executors as root with "
                        "JOBJOURNAL_EXEC_RUN_AS=owner")
        try:
            while not stop.is_set():
                try:
                    self.turn()
                except redis_lib.RedisError as err:  # Redis down or refusing: the jobs run on meanwhile
                    log.warning("Redis error (%s); going on in 1s", err)
                    stop.wait(1.0)
        finally:
            self._shut_down()

    def turn(self) -> None:
        """One loop turn: beat, take new jobs, read output, look after running jobs."""
        if self._beats.due():
            self._beat()
        for entry_id, fields in self._new_dispatches():
            self._take(entry_id, fields)
        self._read_output(TURN_S if self.running else 0)
        self._look_after()

    # -- taking jobs
    def _new_dispatches(self) -> list:
        free = self.slots - len(self.running)
        if free <= 0:
            return []
        found = []
        if self._claims.due():  # dispatches delivered to an executor that died before taking them
            reply = self.queues.xautoclaim(keys.exec_dispatch(), keys.EXEC_GROUP, self.name, CLAIM_IDLE_MS,
                                           count=free)
            found += [(entry_id, fields) for entry_id, fields in reply[1] if fields]
        if len(found) >= free:
            return found
        response = self.queues.xreadgroup(keys.EXEC_GROUP, self.name, {keys.exec_dispatch(): ">"},
                                          count=free - len(found), block=None if self.running else IDLE_BLOCK_MS)
        return found + [entry for _, entries in response or [] for entry in entries]

    def _take(self, entry_id, fields: dict) -> None:
        entry_id = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
        if not exec_dispatch.take(self.queues, entry_id):
            return  # withdrawn by the manager (canceled) or taken by another executor
        try:
            job_id, token = int(fields[b"id"]), fields[b"token"].decode()
        except (KeyError, ValueError, UnicodeDecodeError):
            set_aside(self.store, keys.exec_dispatch(), entry_id, "not a dispatch", fields)
            return
        if not exec_dispatch.genuine(self._key, job_id, token):
            set_aside(self.store, keys.exec_dispatch(), entry_id, "dispatch token does not match the job's: "
                      "not from the manager, refused", fields)
            return
        if not exec_dispatch.claim_job(self.queues, job_id, self.name):
            set_aside(self.store, keys.exec_dispatch(), entry_id, "the job was taken by an executor before: "
                      "it runs once, refused", fields)
            return
        self.queues.set(keys.exec_heartbeat(job_id), self.name, ex=HEARTBEAT_TTL)
        try:
            self._start(job_id)
        except Refused as err:
            self._report_end(job_id, error=str(err))
        except redis_lib.RedisError:
            raise  # the loop waits for Redis; the manager ends the job when its heartbeat lapses
        except Exception as err:  # noqa: BLE001 - one job's failure must not stop the executor
            log.exception("job %s cannot start", f58(job_id))
            self._report_end(job_id, error=f"executor error: {type(err).__name__}: {err}")

    def _start(self, job_id: int) -> None:
        part = read_layout(self.store).partition_of(job_id)  # each time: a store may be laid out after we started
        spec, environment, userid = self._job(part, job_id)
        if self.queues.exists(keys.exec_kill(job_id)):
            raise Refused("canceled before start")
        run_as = self._run_as(userid) if self.as_owner else None
        key = part.job_output(job_id)
        try:
            process = JobProcess(job_id, spec, environment, Capture(key, self.max_output), run_as=run_as)
        except (OSError, ValueError, subprocess.SubprocessError) as err:
            raise Refused(_cannot_run(spec.command[0], run_as, err)) from err
        self.running[job_id] = process
        for pipe in process.watched():
            self._selector.register(pipe, selectors.EVENT_READ, process)
        if process.ran:
            self._report(messages.ExecStarted(id=job_id))
        else:
            self._starting.add(job_id)

    def _run_as(self, userid: int | None) -> RunAs:
        """Who a job of `userid` runs as, in owner mode; Refused for root, unless allowed."""
        if userid is None:
            raise Refused("the job has no submit event, so no owner to run as: refused")
        if userid == 0 and not self.allow_root:
            raise Refused("a job of uid 0 (root) is not run as root: refused (JOBJOURNAL_EXEC_ALLOW_ROOT=1 on the "
                          "executor allows it)")
        try:
            return RunAs.of(userid)
        except KeyError as err:
            raise Refused(f"uid {userid} has no passwd entry on this executor's host, so no group of its own to run "
                          "with: refused (a job runs only as a user the host knows)") from err

    def _job(self, part: Partition, job_id: int) -> tuple[Jobspec, dict[str, str], int | None]:
        """The job's jobspec, environment and userid from its keys, if it is allocated and not finished."""
        with self.store.pipeline(transaction=False) as pipe:
            pipe.xrange(part.job_eventlog(job_id))
            pipe.get(part.job_environment(job_id))
            entries, environment = pipe.execute()
        names = {fields.get(b"name") for _, fields in entries}
        if b"alloc" not in names or names & {b"finish", b"clean"}:
            raise Refused("the job is not allocated, or has finished: not run")
        jobspec, _ = ev.eventlog_attachments(fields for _, fields in entries)
        submit = next((fields for _, fields in entries if fields.get(b"name") == b"submit"), None)
        try:
            userid = ev.decode_entry(submit).userid if submit is not None and self.as_owner else None
            return decode_jobspec(jobspec), decode_environment(environment) if environment else {}, userid
        except (msgspec.DecodeError, msgspec.ValidationError, TypeError, JobJournalError) as err:
            raise Refused(f"the job's jobspec, environment or submit event does not decode: {err}") from err

    # -- running jobs
    def _read_output(self, timeout: float) -> None:
        if not self.running:
            return
        for key, _ in self._selector.select(timeout):
            process: JobProcess = key.data
            if not process.read(key.fileobj):
                self._selector.unregister(key.fileobj)
                process.close(key.fileobj)

    def _look_after(self) -> None:
        if not self.running:
            return
        processes = list(self.running.values())
        for process in processes:
            if process.job_id in self._starting and process.ran:
                self._report(messages.ExecStarted(id=process.job_id))
                self._starting.discard(process.job_id)
        beating = self._alive.due()
        with self.queues.pipeline(transaction=False) as pipe:
            for process in processes:
                pipe.exists(keys.exec_kill(process.job_id))
            if beating:  # XX: a heartbeat that lapsed (we stalled) is not revived: the job may be ended
                for process in processes:
                    pipe.set(keys.exec_heartbeat(process.job_id), self.name, ex=HEARTBEAT_TTL, xx=True)
            replies = pipe.execute()
        kills = replies[: len(processes)]
        lapsed = [not renewed for renewed in replies[len(processes):]] if beating else [False] * len(processes)
        for process, kill, gone in zip(processes, kills, lapsed, strict=True):
            if gone:
                log.warning("job %s: its heartbeat lapsed (the manager may have ended it): killing it",
                            f58(process.job_id))
            process.enforce(bool(kill) or gone)
        ended = [process for process in processes if process.done]
        self._store_output(processes, ended)
        for process in ended:
            del self.running[process.job_id]
            process.reap()
            self._report_ended(process)

    def _report_ended(self, process: JobProcess) -> None:
        """Report the end of a job whose process ended: its wait status once its command ran, else
        (owner mode) why it did not run, which the start helper said on its report pipe."""
        status, timeout = process.wait_status(), process.timed_out
        starting = process.job_id in self._starting
        self._starting.discard(process.job_id)
        if process.failure is not None:
            self._report_end(process.job_id, timeout=timeout,
                             error=_cannot_run(process.command, process.run_as, process.failure))
        elif not process.ran:  # the helper was killed before the exec: by the job's end, or by its owner
            code = process.process.returncode
            how = f"killed by signal {-code}" if code < 0 else f"exit status {code}"
            self._report_end(process.job_id, status=status, timeout=timeout, error=_cannot_run(
                process.command, process.run_as, f"its process ended before the command ran ({how})"))
        else:
            if starting:
                self._report(messages.ExecStarted(id=process.job_id))
            self._report_end(process.job_id, status=status, timeout=timeout)

    def _store_output(self, processes: list[JobProcess], ended: list[JobProcess]) -> None:
        """Store what the jobs wrote; for those that ended, the end of their output too (before their
        end is reported, so a reader of an inactive job's output finds all of it)."""
        for process in ended:
            for pipe in process.watched():
                self._selector.unregister(pipe)
                process.drain(pipe)
        with self.store.pipeline(transaction=False) as pipe:
            for process in processes:
                (process.capture.close if process in ended else process.capture.flush)(pipe)
            pipe.execute()

    def _report(self, report) -> None:
        inbox.send(self.store, exec_dispatch.signed(self._key, report))

    def _report_end(self, job_id: int, status: int | None = None, timeout: bool = False, error: str = "") -> None:
        error = error if len(error) <= messages.MAX_NOTE else error[: messages.MAX_NOTE - 3] + "..."
        self._report(messages.ExecFinished(id=job_id, status=status, timeout=timeout, error=error))
        self.queues.delete(keys.exec_heartbeat(job_id), keys.exec_kill(job_id))  # after the report

    # -- registration
    def _beat(self) -> None:
        info = exec_dispatch.ExecutorInfo(slots=self.slots, running=len(self.running),
                                          beat=exec_dispatch.redis_time(self.queues), host=socket.gethostname(),
                                          pid=os.getpid())
        exec_dispatch.beat(self.queues, self.name, info)

    def _shut_down(self) -> None:
        """Stop taking jobs, terminate the running ones and report their ends (as far as Redis lets)."""
        with contextlib.suppress(redis_lib.RedisError):
            exec_dispatch.leave(self.queues, self.name)
        deadline = time.monotonic() + KILL_GRACE + 1
        for process in self.running.values():
            process.enforce(kill_asked=True)
        while self.running and time.monotonic() < deadline:
            self._read_output(TURN_S)
            try:
                self._look_after()
            except redis_lib.RedisError:
                break
        for process in self.running.values():
            process.signal(signal.SIGKILL)
            process.reap()
        self._selector.close()
