"""One job's command as an executor runs it: the child process, its captured output, its limits.

The command runs in a session of its own (so a kill reaches everything it started) with exactly
the environment the job was submitted with, plus JOBJOURNAL_JOB_ID. Its stdout and stderr are read
by the executor's loop (non-blocking pipes) into a `Capture`, stored every loop turn.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time

from jobjournal.common.ids import f58
from jobjournal.common.jobspec import Jobspec
from jobjournal.common.output import Capture

KILL_GRACE = 2.0
"""Seconds between SIGTERM and SIGKILL."""
READ_SIZE = 65536
PR_SET_PDEATHSIG = 1
DRAIN_S = 1.0
"""Seconds the output of an exited command is still read (a background child may hold it open)."""


class JobProcess:
    def __init__(self, job_id: int, spec: Jobspec, environment: dict[str, str], capture: Capture,
                 clock=time.monotonic):
        self.job_id = job_id
        self.capture = capture
        self.duration = spec.duration
        self._clock = clock
        self.started = clock()
        self.timed_out = False
        self._killed_at: float | None = None
        self._exited_at: float | None = None
        env = {**environment, "JOBJOURNAL_JOB_ID": f58(job_id)}
        self.process = subprocess.Popen(  # OSError for a command that cannot run
            list(spec.command), cwd=str(spec.cwd) or None, env=env, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True, preexec_fn=_die_with_parent,
        )
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


def _die_with_parent() -> None:
    """In the child, before exec (Linux): SIGKILL when the executor dies, so that no command outlives
    the executor that watches it (the manager then ends the job with an exec exception)."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
