"""`make bench BENCH_LAYOUT=cluster`: the scale-out figures, in one run, on a standalone Redis and on a
local 3-master Redis Cluster (both from the bundled binary), written to bench/results.json under
`scale_out`.

For each configuration (layout, partitions P, lister workers N): a fresh store, a manager and N
lister worker processes; jobs go straight into the manager's inbox (1000 an entry, no rq: this
measures the journal path; 1 job in 10 fails, so the failed list is real); events/s posted (until
every job is inactive) and applied (until every partition's view has caught up); CPU per event of
the manager, the listers and each Redis process (user+sys from /proc); then a cold rebuild by the
N workers, and query latencies (p99 and median, once no Redis rewrites its AOF in the background). On a
2-core machine N masters cannot go N times faster: the CPU per event is what carries over
(docs/scale-out.md turns it into a model).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from jobjournal.common.connection import connect_url
from jobjournal.common.jobspec import encode, make_jobspec
from jobjournal.common.journal import journal_head
from jobjournal.common.layout import read_layout
from jobjournal.common.packed import is_cluster
from jobjournal.common.redis_cluster import EmbeddedCluster
from jobjournal.common.redis_server import EmbeddedRedis
from jobjournal.lister import query as q
from jobjournal.manager.ingest import accept_jobs

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results.json"
CONFIGS = [("standalone", 1, 1), ("standalone", 16, 1), ("standalone", 16, 3),
           ("cluster", 16, 1), ("cluster", 16, 2), ("cluster", 16, 3)]
TICKS = os.sysconf("SC_CLK_TCK")


class Store:
    """A fresh store of one layout, its processes, and their CPU time."""

    def __init__(self, layout: str, partitions: int):
        self.home = Path(tempfile.mkdtemp(prefix="jj-scale-", dir="/tmp"))
        if layout == "cluster":
            self.server = EmbeddedCluster(self.home / "cluster", masters=3)
            self.queue_server = EmbeddedRedis(self.home / "queues")
            queues = self.queue_server.start()
        else:
            self.server, self.queue_server = EmbeddedRedis(self.home / "redis"), None
            queues = ""
        self.url = self.server.start()
        self.redis = connect_url(self.url)
        self.env = {**os.environ, "JOBJOURNAL_REDIS_URL": self.url, "JOBJOURNAL_QUEUE_REDIS_URL": queues,
                    "JOBJOURNAL_HOME": str(self.home), "JOBJOURNAL_PARTITIONS": str(partitions),
                    "JOBJOURNAL_NODES": "1000", "JOBJOURNAL_CORES_PER_NODE": "64", "JOBJOURNAL_REBUILD_PROCESSES": "1"}
        self.procs: dict[str, subprocess.Popen] = {}

    def start(self, name: str, *args: str) -> None:
        log = open(self.home / f"{name}.log", "a")  # noqa: SIM115 - the child keeps it
        self.procs[name] = subprocess.Popen([sys.executable, "-m", "jobjournal", *args], cwd=ROOT, env=self.env,
                                            stdout=log, stderr=subprocess.STDOUT)

    def stop(self, name: str) -> None:
        proc = self.procs.pop(name)
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)

    def redis_pids(self) -> list[int]:
        home = self.server.home
        return [int(path.read_text()) for path in home.rglob("redis.pid")]

    def cpu(self) -> dict[str, float]:
        """CPU seconds (user+sys) of each process so far."""
        pids = {name: proc.pid for name, proc in self.procs.items()}
        pids.update({f"redis-{index}": pid for index, pid in enumerate(self.redis_pids())})
        return {name: _cpu_seconds(pid) for name, pid in pids.items()}

    def close(self) -> None:
        for name in list(self.procs):
            self.procs.pop(name).kill()
        self.redis.close()
        if isinstance(self.server, EmbeddedCluster):
            self.server.stop()
            self.queue_server.stop(save=False)
        else:
            self.server.stop(save=False)
        shutil.rmtree(self.home, ignore_errors=True)


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def _wait(condition, timeout: float, what: str) -> float:
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout:
            raise RuntimeError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)
    return time.monotonic() - started


def _inactive(redis, layout) -> int:
    with redis.pipeline(transaction=False) as pipe:
        for part in layout.partitions:
            pipe.zcard(part.inactive_jobs())
        return sum(pipe.execute())


def _caught_up(redis, layout) -> bool:
    for part in layout.partitions:
        current = redis.get(part.view_current())
        if current is None:
            return False
        if int(redis.hget(part.view_meta(int(current)), "seq") or -1) != journal_head(redis, part)[1]:
            return False
    return True


def _events(redis, layout) -> int:
    return sum(journal_head(redis, part)[1] for part in layout.partitions)


def measure(kind: str, partitions: int, workers: int, jobs: int) -> dict:
    store = Store(kind, partitions)
    try:
        store.start("manager", "manager")
        _wait(lambda: store.redis.exists("jj:manager:lease"), 60, "a manager")
        layout = read_layout(store.redis)
        for index in range(workers):
            store.start(f"lister-{index}", "lister")
        _wait(lambda: _caught_up(store.redis, layout), 60, "the first views")
        spec = encode(make_jobspec(command=["app"], sim={"runtime": 0, "exit_code": 0}))
        failing = encode(make_jobspec(command=["app"], sim={"runtime": 0, "exit_code": 1}))
        before, started = store.cpu(), time.monotonic()
        for _ in range(jobs // 1000):
            accept_jobs(store.redis, [spec] * 900 + [failing] * 100, 1000)  # 1 in 10 fails: a real failed list
        posted_s = _wait(lambda: _inactive(store.redis, layout) >= jobs, 1800, "the jobs to end")
        applied_s = time.monotonic() - started + _wait(lambda: _caught_up(store.redis, layout), 600, "the views")
        after = store.cpu()
        events = _events(store.redis, layout)
        cpu = {name: round((after[name] - before.get(name, 0)) * 1e6 / events, 1) for name in after}
        result = {
            "layout": kind, "partitions": partitions, "workers": workers, "jobs": jobs, "events": events,
            "events_per_s_posted": round(events / posted_s), "events_per_s_applied": round(events / applied_s),
            "cpu_us_per_event": cpu,
            "redis_cpu_us_per_event_per_master": [v for k, v in sorted(cpu.items()) if k.startswith("redis-")],
        }
        result["cold_rebuild_s"] = _cold_rebuild(store, layout, workers)
        _wait(lambda: not _persisting(store.redis), 600, "Redis' background rewrite")
        result["query_p99_ms"], result["query_median_ms"] = _queries(store.redis, layout)
        return result
    finally:
        store.close()


def _persisting(redis) -> bool:
    """Whether a Redis server forked to rewrite its AOF or save (the child takes a core of this
    machine's few, and queries measured meanwhile measure that)."""
    if is_cluster(redis):
        infos = list(redis.info("persistence", target_nodes=redis.PRIMARIES).values())
    else:
        infos = [redis.info("persistence")]
    return any(int(info.get("aof_rewrite_in_progress", 0)) or int(info.get("rdb_bgsave_in_progress", 0))
               for info in infos)


def _cold_rebuild(store: Store, layout, workers: int) -> float:
    """Stop the listers, drop every view, start them again: seconds until every view is back."""
    for index in range(workers):
        store.stop(f"lister-{index}")
    for part in layout.partitions:
        store.redis.delete(part.view_current())
    started = time.monotonic()
    for index in range(workers):
        store.start(f"lister-{index}", "lister")
    _wait(lambda: _caught_up(store.redis, layout), 600, "the rebuilt views")
    return round(time.monotonic() - started, 3)


def _queries(redis, layout, runs: int = 200) -> tuple[dict, dict]:
    """p99 and median milliseconds of each query, once every background rewrite is done."""
    seen: dict = {}  # as a caller that queries often keeps it (the web view): one round trip fewer
    calls = {
        "newest_100": lambda: q.list_jobs(redis, q.ListQuery(max_entries=100, attrs=["all"]), layout=layout,
                                          seen=seen),
        "failed": lambda: q.list_jobs(redis, q.ListQuery(max_entries=100, results=["failed"]), layout=layout,
                                      seen=seen),
        "stats": lambda: q.stats(redis, layout=layout, seen=seen),
    }
    p99, median = {}, {}
    for name, call in calls.items():
        samples = []
        for _ in range(runs):
            started = time.perf_counter()
            call()
            samples.append((time.perf_counter() - started) * 1000)
        p99[name] = round(statistics.quantiles(samples, n=100)[98], 3)
        median[name] = round(statistics.median(samples), 3)
    return p99, median


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=20_000, help="jobs per configuration")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    rows = []
    for kind, partitions, workers in CONFIGS:
        print(f"[{time.strftime('%H:%M:%S')}] {kind}, P={partitions}, {workers} lister worker(s)", flush=True)
        rows.append(measure(kind, partitions, workers, args.jobs))
    print(f"\n{'layout':<11}{'P':>3}{'N':>3}{'posted/s':>10}{'applied/s':>11}{'mgr us/ev':>10}"
          f"{'lister us/ev':>13}{'redis us/ev/master':>26}{'cold s':>8}{'newest p99':>11}{'failed p99':>11}")
    for row in rows:
        cpu = row["cpu_us_per_event"]
        listers = sum(v for k, v in cpu.items() if k.startswith("lister"))
        masters = "/".join(str(v) for v in row["redis_cpu_us_per_event_per_master"])
        print(f"{row['layout']:<11}{row['partitions']:>3}{row['workers']:>3}{row['events_per_s_posted']:>10}"
              f"{row['events_per_s_applied']:>11}{cpu['manager']:>10}{round(listers, 1):>13}{masters:>26}"
              f"{row['cold_rebuild_s']:>8}{row['query_p99_ms']['newest_100']:>11}{row['query_p99_ms']['failed']:>11}")
    results = json.loads(args.output.read_text()) if args.output.exists() else {}
    results["scale_out"] = rows
    args.output.write_text(json.dumps(results, indent=2))
    print(f"\nwrote {args.output} (scale_out)")


if __name__ == "__main__":
    main()
