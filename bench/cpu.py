"""CPU time and memory of the System's processes, from /proc: what a phase costs per job.

A process's CPU is user+sys (utime+stime) of the process and of its children: those it reaped
(cutime+cstime: the lister's rebuild helpers once waited for, Redis's AOF rewrite forks) and those
still running (every live descendant, found by parent pid). The bench's own process counts as
`client` (time.process_time: every thread of it).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from bench.system import System

TICKS = os.sysconf("SC_CLK_TCK")
PROC = Path("/proc")


def _stat(pid: int) -> list[str] | None:
    """The fields of /proc/<pid>/stat after the command name (state first); None if it is gone."""
    try:
        return (PROC / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return None


def _ticks(fields: list[str]) -> int:
    """utime + stime + cutime + cstime."""
    return int(fields[11]) + int(fields[12]) + int(fields[13]) + int(fields[14])


def _children() -> dict[int, list[int]]:
    """Parent pid -> its live children's pids, for every process."""
    tree: dict[int, list[int]] = {}
    for entry in PROC.iterdir():
        if entry.name.isdigit() and (fields := _stat(int(entry.name))) is not None:
            tree.setdefault(int(fields[1]), []).append(int(entry.name))
    return tree


def cpu_seconds(pid: int, tree: dict[int, list[int]] | None = None) -> float:
    """CPU seconds of `pid`, its reaped children and its live descendants so far (0 if it is gone)."""
    tree = _children() if tree is None else tree
    total, todo = 0, [pid]
    while todo:
        current = todo.pop()
        fields = _stat(current)
        if fields is not None:
            total += _ticks(fields)
            todo += tree.get(current, [])
    return total / TICKS


def status_mb(pid: int, field: str = "VmRSS") -> float | None:
    """A size from /proc/<pid>/status (VmRSS: resident now; VmHWM: the peak), in MB; None if gone."""
    try:
        for line in (PROC / str(pid) / "status").read_text().splitlines():
            if line.startswith(field + ":"):
                return round(int(line.split()[1]) / 1024, 1)
    except FileNotFoundError:
        return None
    return None


class Meter:
    """Samples the CPU seconds of every process of a System (by its name there), `redis` (the
    server's own threads), `redis_forks` (its children: AOF rewrites) and `client`."""

    def __init__(self, system: System):
        self.system = system
        self.redis_pid = int(system.redis.info("server")["process_id"])

    def sample(self) -> dict[str, float]:
        tree = _children()
        out = {name: cpu_seconds(proc.pid, tree) for name, proc in self.system.procs.items()}
        fields = _stat(self.redis_pid)
        own = (int(fields[11]) + int(fields[12])) / TICKS if fields else 0.0
        out["redis"] = own  # the server's own threads
        out["redis_forks"] = cpu_seconds(self.redis_pid, tree) - own  # its AOF rewrites, done or running
        out["client"] = time.process_time()
        return out

    def rss_mb(self, name: str, field: str = "VmRSS") -> float | None:
        proc = self.system.procs.get(name)
        return status_mb(proc.pid, field) if proc else None


def reaped_children_s() -> float:
    """CPU seconds of the children this process started and waited for (cutime+cstime)."""
    fields = _stat(os.getpid()) or ["0"] * 15
    return (int(fields[13]) + int(fields[14])) / TICKS


def spent(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """CPU seconds each process spent between two samples (a process started in between: all of its own)."""
    return {name: max(0.0, value - before.get(name, 0.0)) for name, value in after.items()}


def added(a: dict[str, float], b: dict[str, float]) -> dict[str, float]:
    return {name: a.get(name, 0.0) + b.get(name, 0.0) for name in {**a, **b}}


def per_job_ms(seconds: dict[str, float], jobs: int) -> dict[str, float]:
    """CPU ms per job of each process, largest first."""
    ordered = sorted(seconds.items(), key=lambda item: -item[1])
    return {name: round(value * 1000 / max(1, jobs), 4) for name, value in ordered}


class Phase:
    """`with Phase(meter) as phase: ...`; then `phase.seconds` (CPU s per process) and `phase.wall`."""

    def __init__(self, meter: Meter):
        self.meter = meter
        self.seconds: dict[str, float] = {}
        self.wall = 0.0

    def __enter__(self) -> Phase:
        self._before, self._started = self.meter.sample(), time.monotonic()
        return self

    def __exit__(self, *exc) -> None:
        self.wall = time.monotonic() - self._started
        self.seconds = spent(self._before, self.meter.sample())
