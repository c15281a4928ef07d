"""The system under measurement: an embedded Redis of its own and jobjournal processes."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from jobjournal.common import journal as jr
from jobjournal.common.connection import connect
from jobjournal.common.keys import LEGACY
from jobjournal.common.redis_server import EmbeddedRedis
from jobjournal.common.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
POOL = {"JOBJOURNAL_NODES": "1000", "JOBJOURNAL_CORES_PER_NODE": "64"}


class System:
    def __init__(self):
        self.home = Path(tempfile.mkdtemp(prefix="jj-bench-", dir="/tmp"))
        self.server = EmbeddedRedis(self.home)
        self.url = self.server.start()
        self.settings = Settings(redis_url=self.url, home=str(self.home), **_pool())
        self.redis = connect(self.settings)
        self.baseline_memory = self.redis.info("memory")["used_memory"]
        self.procs: dict[str, subprocess.Popen] = {}
        # the default lease TTL (5 s): at 1M jobs a full-journal snapshot (ZRANGE of 1M ids)
        # holds Redis ~0.5 s, and 2 s leases expired around it
        self.env = {**os.environ, "JOBJOURNAL_REDIS_URL": self.url, **POOL}

    def start(self, name: str, *args: str) -> subprocess.Popen:
        log = open(self.home / f"{name}.log", "a")  # noqa: SIM115 - the child keeps it
        proc = subprocess.Popen(
            [sys.executable, "-m", "jobjournal", *args], cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT
        )
        self.procs[name] = proc
        return proc

    def stop(self, name: str, kill: bool = False) -> None:
        proc = self.procs.pop(name)
        proc.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        proc.wait(30)

    def wait_leader(self, lease_key: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while self.redis.get(lease_key) is None:
            if time.monotonic() > deadline:
                raise RuntimeError(f"nobody took {lease_key}")
            time.sleep(0.01)

    def view_caught_up(self) -> bool:
        current = self.redis.get(LEGACY.view_current())
        if current is None:
            return False
        seq = self.redis.hget(LEGACY.view_meta(int(current)), "seq")
        return int(seq or -1) == jr.journal_head(self.redis, LEGACY)[1]

    def quiet(self) -> bool:
        """Redis does no background work: no lazy frees pending, no AOF rewrite or RDB save
        running (a fork of the whole dataset, which competes for the cores)."""
        memory, persistence = self.redis.info("memory"), self.redis.info("persistence")
        return (
            memory.get("lazyfree_pending_objects", 0) == 0
            and not persistence["aof_rewrite_in_progress"]
            and not persistence["rdb_bgsave_in_progress"]
        )

    def close(self) -> None:
        for name in list(self.procs):
            self.stop(name, kill=True)
        self.redis.close()
        self.server.stop(save=False)
        shutil.rmtree(self.home, ignore_errors=True)


def _pool() -> dict:
    return {"nodes": int(POOL["JOBJOURNAL_NODES"]), "cores_per_node": int(POOL["JOBJOURNAL_CORES_PER_NODE"])}


def wait_until(condition, timeout: float, what: str, interval: float = 0.005) -> float:
    """Poll until condition() holds; returns the time it took."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout:
            raise RuntimeError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)
    return time.monotonic() - started
