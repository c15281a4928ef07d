"""One job's command as an executor runs it: the child process, its captured output, its limits.

The command runs in a session of its own (so a kill reaches everything it started) with exactly
the environment the job was submitted with, plus JOBJOURNAL_JOB_ID. Its stdout and stderr are read
by the executor's loop (non-blocking pipes) into a `Capture`, stored every loop turn.

Run as its owner (`RunAs`, setting exec_run_as=owner) the executor starts, as root, the helper
manager/become.py, which takes the owner's groups, gid and uid, changes to the job's working
directory with the owner's rights (a job without one starts in /) and execs the command. Popen
returns once that helper runs, before it changes ids: the executor never waits on a process the
owner may stop. Whether the command then ran, or why not, the helper writes to a pipe of its own
(`report`) that the executor's loop reads like the output pipes: the start is known when it
closes, a failure (the directory or the command refused to the owner) when the process ends. As
Flux does, nothing of the environment is changed for the owner: HOME, USER and the rest are what
the job was submitted with. A uid without a passwd entry is not run (no group to give it).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import pwd
import signal
import subprocess
import sys
import time
from typing import NamedTuple

from jobjournal.common.ids import f58
from jobjournal.common.jobspec import Jobspec
from jobjournal.common.output import Capture
from jobjournal.manager import become

KILL_GRACE = 2.0
"""Seconds between SIGTERM and SIGKILL."""
READ_SIZE = 65536
DRAIN_S = 1.0
"""Seconds the output of an exited command is still read (a background child may hold it open)."""
DRAIN_READS = 64
"""At most this many reads of READ_SIZE from an ended job's pipe: a background process it left
may keep writing; what it writes after the job's end is not the job's."""
SAID_MAX = 4096
"""What is kept of what the start helper reports (it writes a line or two)."""


class RunAs(NamedTuple):
    """The OS identity a job's command runs with."""

    uid: int
    gid: int
    groups: tuple[int, ...]

    @classmethod
    def of(cls, uid: int) -> RunAs:
        """The uid's primary group and groups from the passwd and group databases; KeyError for a uid
        without a passwd entry (it has no group of its own: a gid made up for it, gid = uid say,
        may be a system group, as Flux's IMP knows when it refuses such a uid)."""
        entry = pwd.getpwuid(uid)
        return cls(uid, entry.pw_gid, tuple(os.getgrouplist(entry.pw_name, entry.pw_gid)))


class JobProcess:
    def __init__(self, job_id: int, spec: Jobspec, environment: dict[str, str], capture: Capture,
                 clock=time.monotonic, run_as: RunAs | None = None):
        self.job_id = job_id
        self.capture = capture
        self.duration = spec.duration
        self._clock = clock
        self.started = clock()
        self.timed_out = False
        self._killed_at: float | None = None
        self._exited_at: float | None = None
        self.command = spec.command[0]
        self.cwd = str(spec.cwd) or "/"
        self.run_as = run_as
        self.report = None
        """Owner mode: the pipe on which the start helper reports (manager/become.py), until its end."""
        self._said = b""
        self.ran = run_as is None
        """The command is known to run (Popen returns once it does, except in owner mode)."""
        self.failure: str | None = None
        """Owner mode, once `report` is at its end: why the command could not run (None: nothing kept it)."""
        env = {**environment, "JOBJOURNAL_JOB_ID": f58(job_id)}
        options = dict(stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       start_new_session=True)
        if run_as is None:  # OSError for a command that cannot run
            self.process = subprocess.Popen(list(spec.command), cwd=str(spec.cwd) or None, env=env,
                                            preexec_fn=_die_with_parent(os.getpid()), **options)
        else:
            self.process, self.report = _popen_as(run_as, list(spec.command), self.cwd, env, options)
        self.pipes = {self.process.stdout: "stdout", self.process.stderr: "stderr"}
        for pipe in self.pipes:
            os.set_blocking(pipe.fileno(), False)

    def watched(self) -> list:
        """The pipes the executor's loop watches: the output pipes and, until its end, `report`."""
        return [*self.pipes, *([self.report] if self.report is not None else [])]

    def read(self, pipe) -> bool:
        """Read what `pipe` has; False once it is at its end (the caller stops watching it and
        closes it). At the end of `report` what the helper said is known: it exec'd the command
        (`ran`), or says why it could not (`failure`), or ended before."""
        data = self._take(pipe)
        if data == b"" and pipe is self.report:
            self._settle()
        return data != b""

    def _take(self, pipe) -> bytes | None:
        """What `pipe` holds now, kept (as output, or as what the helper said): b"" at its end,
        None when it has nothing yet."""
        try:
            data = os.read(pipe.fileno(), SAID_MAX if pipe is self.report else READ_SIZE)
        except BlockingIOError:
            return None
        if data and pipe is self.report:
            self._said = (self._said + data)[:SAID_MAX]
        elif data:
            self.capture.add(self.pipes[pipe], data)
        return data

    def _settle(self) -> None:
        self.failure = become.failure(self._said, self.command, self.cwd)
        self.ran = self.failure is None and become.RAN in self._said

    def close(self, pipe) -> None:
        pipe.close()
        if pipe is self.report:
            self.report = None
        else:
            del self.pipes[pipe]

    def drain(self, pipe) -> None:
        """Read what `pipe` still holds, then close it: the command has ended, and what it wrote
        before it ended belongs to its output even if the executor was slow to read it."""
        for _ in range(DRAIN_READS):
            if not self._take(pipe):
                break
        if pipe is self.report:  # at its end with the helper's (nothing else holds it)
            self._settle()
        self.close(pipe)

    @property
    def done(self) -> bool:
        """The command has exited and its pipes are drained (or, DRAIN_S after it exited, are still
        held open by something it left running in the background)."""
        if self.process.poll() is None:
            return False
        if self._exited_at is None:
            self._exited_at = self._clock()
        return not self.pipes or self._clock() - self._exited_at > DRAIN_S


    def enforce(self, kill_asked: bool) -> None:
        """Stop the command when asked or past its time limit: SIGTERM, then SIGKILL after a grace."""
        now = self._clock()
        if self._killed_at is None:
            self.timed_out = bool(self.duration) and now - self.started > self.duration
            if self.timed_out or kill_asked:
                self.signal(signal.SIGTERM)
                self._killed_at = now
        elif now - self._killed_at > KILL_GRACE:
            self.signal(signal.SIGKILL)

    def signal(self, signum: int) -> None:
        if self.process.poll() is None or self.pipes:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signum)

    def reap(self) -> None:
        """Once the command has ended: kill what it left running in its session (as Flux's job shell
        does when a job's tasks exit), so nothing outlives the job on cores the manager frees."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)

    def wait_status(self) -> int:
        """waitpid(2)-style status (Popen's negative returncode: killed by that signal)."""
        code = self.process.wait()
        return -code if code < 0 else code << 8


def _popen_as(run_as: RunAs, command: list[str], cwd: str, env: dict[str, str], options: dict):
    """Start `command` as `run_as` in `cwd` through the root helper (manager/become.py): the process
    and the pipe (non-blocking) on which the helper reports. Popen returns once the helper runs, as
    root; the job's environment reaches it in a memfd, never as its own. OSError or ValueError when
    the helper cannot start (or the environment cannot be passed)."""
    environment = become.encode_environment(env)
    report, reported = os.pipe()
    try:
        given = os.memfd_create("jobjournal-environment", os.MFD_CLOEXEC)
    except BaseException:
        os.close(report)
        os.close(reported)
        raise
    try:
        written = 0
        while written < len(environment):
            written += os.write(given, environment[written:])
        os.lseek(given, 0, os.SEEK_SET)
        args = become.argv(os.getpid(), reported, given, run_as.uid, run_as.gid, run_as.groups, cwd, command)
        process = subprocess.Popen(args, env={}, cwd="/", pass_fds=(reported, given), **options)
    except BaseException:
        os.close(report)
        raise
    finally:
        os.close(reported)
        os.close(given)
    os.set_blocking(report, False)
    return process, os.fdopen(report, "rb", buffering=0)


def _die_with_parent(parent: int):
    """What the child runs before exec (Linux; in owner mode the helper does the same once it has
    its ids, as a change of ids clears it): SIGKILL when the executor dies, so that no command
    outlives the executor that watches it (the manager then ends the job with an exec exception);
    at once if the executor died before that."""

    def die() -> None:
        if sys.platform.startswith("linux"):
            ctypes.CDLL(None, use_errno=True).prctl(become.PR_SET_PDEATHSIG, signal.SIGKILL)
            if os.getppid() != parent:
                os.kill(os.getpid(), signal.SIGKILL)

    return die
