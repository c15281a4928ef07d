"""One job's command as an executor runs it: the child process, its captured output, its limits.

The command runs in a session of its own (so a kill reaches everything it started) with exactly
the environment the job was submitted with, plus JOBJOURNAL_JOB_ID. Its stdout and stderr are read
by the executor's loop (non-blocking pipes) into a `Capture`, stored every loop turn.

Run as its owner (`RunAs`, setting exec_run_as=owner) the child takes the owner's uid, primary gid
and groups (setgroups, setregid, setreuid: subprocess's user=, group=, extra_groups=) before it
changes to the job's working directory and execs, so both are checked with the owner's rights,
not the executor's (a job without a working directory starts in /). As Flux does, nothing of the
environment is changed for the owner: HOME, USER and the rest are what the job was submitted with.
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

KILL_GRACE = 2.0
"""Seconds between SIGTERM and SIGKILL."""
READ_SIZE = 65536
PR_SET_PDEATHSIG = 1
DRAIN_S = 1.0
"""Seconds the output of an exited command is still read (a background child may hold it open)."""
DRAIN_READS = 64
"""At most this many reads of READ_SIZE from an ended job's pipe: a background process it left
may keep writing; what it writes after the job's end is not the job's."""


class RunAs(NamedTuple):
    """The OS identity a job's command runs with."""

    uid: int
    gid: int
    groups: tuple[int, ...]

    @classmethod
    def of(cls, uid: int) -> RunAs:
        """The uid's primary group and groups from the passwd and group databases; a uid without a
        passwd entry runs with gid = uid and no other group."""
        try:
            entry = pwd.getpwuid(uid)
        except KeyError:
            return cls(uid, uid, ())
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
        env = {**environment, "JOBJOURNAL_JOB_ID": f58(job_id)}
        options = dict(env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       start_new_session=True)
        if run_as is None:  # OSError for a command that cannot run
            self.process = subprocess.Popen(list(spec.command), cwd=str(spec.cwd) or None,
                                            preexec_fn=_die_with_parent(os.getpid()), **options)
        else:
            self.process = _popen_as(run_as, list(spec.command), str(spec.cwd) or "/", options)
        self.pipes = {self.process.stdout: "stdout", self.process.stderr: "stderr"}
        for pipe in self.pipes:
            os.set_blocking(pipe.fileno(), False)

    def read(self, pipe) -> bool:
        """Read what `pipe` has; False once it is at its end (the caller stops watching it and
        closes it)."""
        try:
            data = os.read(pipe.fileno(), READ_SIZE)
        except BlockingIOError:
            return True
        if data:
            self.capture.add(self.pipes[pipe], data)
        return bool(data)

    def close(self, pipe) -> None:
        pipe.close()
        del self.pipes[pipe]

    def drain(self, pipe) -> None:
        """Read what `pipe` still holds, then close it: the command has ended, and what it wrote
        before it ended belongs to its output even if the executor was slow to read it."""
        for _ in range(DRAIN_READS):
            try:
                data = os.read(pipe.fileno(), READ_SIZE)
            except BlockingIOError:
                break
            if not data:
                break
            self.capture.add(self.pipes[pipe], data)
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


def _popen_as(run_as: RunAs, command: list[str], cwd: str, options: dict) -> subprocess.Popen:
    """Start `command` as `run_as`, in `cwd` entered with the owner's rights (an OSError naming it
    when the owner may not enter it; an OSError from exec when the owner may not run the command)."""
    report, reported = os.pipe()  # the child writes there the errno of a failed chdir
    die = _die_with_parent(os.getpid())

    def prepare() -> None:  # in the child, once it is the owner (subprocess changes ids before this)
        try:
            os.chdir(cwd)
        except OSError as err:
            os.write(reported, str(err.errno).encode())
            raise
        die()

    try:
        return subprocess.Popen(command, user=run_as.uid, group=run_as.gid, extra_groups=list(run_as.groups),
                                preexec_fn=prepare, **options)
    except subprocess.SubprocessError as err:
        os.close(reported)
        reported = -1
        code = os.read(report, 32)
        if code.isdigit():
            raise OSError(int(code), os.strerror(int(code)), cwd) from err
        raise
    finally:
        os.close(report)
        if reported >= 0:
            os.close(reported)


def _die_with_parent(parent: int):
    """What the child runs before exec (Linux), once it has its ids (a change of ids clears it): SIGKILL
    when the executor dies, so that no command outlives the executor that watches it (the manager
    then ends the job with an exec exception); at once if the executor died before that."""

    def die() -> None:
        if sys.platform.startswith("linux"):
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
            if os.getppid() != parent:
                os.kill(os.getpid(), signal.SIGKILL)

    return die
