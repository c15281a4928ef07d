"""Each measured figure, as a function of a running System."""

from __future__ import annotations

import statistics
import subprocess
import sys
import threading
import time

from rq import Queue, Worker
from rq.job import Job, JobStatus
from rq.registry import FinishedJobRegistry

from bench.cpu import Meter, added, cpu_seconds, spent
from bench.system import System, wait_until
from jobjournal.common import keys
from jobjournal.common.jobspec import encode, make_jobspec
from jobjournal.common.keys import LEGACY
from jobjournal.common.layout import read_layout
from jobjournal.lister import query as q
from jobjournal.lister.naive import build_naive
from jobjournal.lister.view import delete_generation
from jobjournal.lister.worker import ListerWorker
from jobjournal.manager import client
from jobjournal.manager.ingest import accept_jobs

USERS = list(range(2000, 2010))
REQUEST = 1000


def percentiles(samples_ms: list[float]) -> dict:
    ordered = sorted(samples_ms)
    return {
        "p50": round(statistics.median(ordered), 3),
        "p99": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))], 3),
    }


def population_spec(index: int):
    """Jobspecs of the main scenario: zero runtime, one in ten fails, two queues."""
    return make_jobspec(
        command=["app", str(index % 7)],
        name=f"app{index % 7}",
        queue="batch" if index % 3 else "debug",
        sim={"runtime": 0, "exit_code": 1 if index % 10 == 0 else 0},
    )


def end_to_end(system: System, count: int) -> dict:
    """Submit `count` jobs through rq (1000 per request); time until all are inactive in the view."""
    redis = system.redis
    specs = [population_spec(i) for i in range(REQUEST)]
    inactive_before = redis.zcard(LEGACY.inactive_jobs())
    seq_before = int(redis.hget(LEGACY.journal_head(), "seq") or 0)
    started = time.monotonic()
    for request in range(count // REQUEST):
        client.submit(redis, specs, userid=USERS[request % len(USERS)], timeout=120)
    submitted = time.monotonic() - started
    target = inactive_before + count // REQUEST * REQUEST
    wait_until(lambda: redis.zcard(LEGACY.inactive_jobs()) >= target, 1800, "jobs to finish", 0.05)
    wait_until(system.view_caught_up, 600, "the view to catch up", 0.01)
    elapsed = time.monotonic() - started
    events = int(redis.hget(LEGACY.journal_head(), "seq")) - seq_before
    return {
        "jobs": count,
        "seconds": round(elapsed, 3),
        "submit_seconds": round(submitted, 3),
        "jobs_per_s": round(count / elapsed, 1),
        "events_per_s": round(events / elapsed, 1),
    }


def add_active_jobs(system: System, count: int) -> None:
    """About `count` active jobs: half running for an hour, half held."""
    half = count // 2
    accept_jobs(system.redis, [encode(make_jobspec(command=["long"], sim={"runtime": 3600}))] * half, USERS[0])
    accept_jobs(system.redis, [encode(make_jobspec(command=["held"], urgency=0))] * (count - half), USERS[1])
    wait_until(lambda: system.redis.scard(LEGACY.active_jobs()) >= count, 60, "active jobs")
    wait_until(system.view_caught_up, 60, "the view to catch up")


def cold_rebuild(system: System, runs: int = 3, meter: Meter | None = None) -> dict:
    """Stop the lister, drop the view, start a lister process: time until a query answers.
    The median of `runs`, each started on a quiet Redis (the old view freed, no background
    rewrite left from earlier traffic); an AOF rewrite the rebuild itself sets off counts.
    With a `meter`, also: `startup_s`, the median time from the process's start to its taking the
    lister lease (the stopped lister gave it back), that is, its imports and connecting, before any
    rebuilding; `cpu_s`, the CPU seconds each process spent from the start of the lister process to
    the view's switch, summed over the runs (the lister's are its whole life, helpers included),
    and `lister_startup_cpu_s` the lister's until it held the lease (per run); the new lister's
    RSS and peak RSS then (`lister_rss_mb`, `lister_peak_rss_mb`)."""
    samples, startups, cpu, startup_cpu = [], [], {}, 0.0
    lease = LEGACY.lister_lease()
    for _ in range(runs):
        system.stop("lister")
        _drop_views(system)
        wait_until(system.quiet, 120, "Redis to be quiet", 0.05)
        before = meter.sample() if meter else {}
        started = time.monotonic()
        proc = system.start("lister", "lister")
        if meter and not system.redis.exists(lease):
            wait_until(lambda: system.redis.exists(lease), 60, "the lister lease", 0.002)
            startups.append(time.monotonic() - started)
            startup_cpu += cpu_seconds(proc.pid)
        wait_until(lambda: system.redis.exists(LEGACY.view_current()), 600, "a view", 0.002)
        samples.append(round(time.monotonic() - started, 3))
        if meter:
            cpu = added(cpu, spent(before, meter.sample()))
        q.stats(system.redis, timeout=1)
    out = {"seconds": statistics.median(samples), "samples": samples}
    if meter:
        out.update(cpu_s=cpu, runs=runs, lister_startup_cpu_s=round(startup_cpu / max(1, len(startups)), 3),
                   startup_s=round(statistics.median(startups), 3) if startups else None,
                   lister_rss_mb=meter.rss_mb("lister"), lister_peak_rss_mb=meter.rss_mb("lister", "VmHWM"))
    return out


def _drop_views(system: System) -> None:
    redis = system.redis
    for generation in range(1, int(redis.get(LEGACY.view_generation_counter()) or 0) + 1):
        delete_generation(redis, LEGACY, generation)
    redis.delete(LEGACY.view_current(), LEGACY.view_building(), LEGACY.journal_consumers())


def naive_rebuild(system: System) -> float:
    """Build the same view by walking every job's eventlog (same apply and write code)."""
    generation = 10**9
    wait_until(system.quiet, 120, "Redis to be quiet", 0.05)
    started = time.monotonic()
    build_naive(system.redis, LEGACY, generation)
    seconds = time.monotonic() - started
    delete_generation(system.redis, LEGACY, generation)
    return round(seconds, 3)


def warm_restart(system: System, runs: int = 15) -> float:
    """Stop the lister process; an in-process worker resumes: median time until it applies again
    (sub-millisecond: started on a quiet Redis, after the frees of the rebuilds before)."""
    system.stop("lister")
    wait_until(system.quiet, 120, "Redis to be quiet", 0.05)
    samples = []
    for _ in range(runs):
        worker = ListerWorker(system.redis, system.settings)
        stop = threading.Event()
        thread = threading.Thread(target=worker.run, args=(stop,), daemon=True)
        started = time.monotonic()
        thread.start()
        worker.applying.wait(60)
        samples.append(time.monotonic() - started)
        stop.set()
        thread.join(10)
    system.start("lister", "lister")
    system.wait_leader(LEGACY.lister_lease())
    return round(statistics.median(samples), 4)


def event_to_view(system: System, rate: int = 1000, seconds: float = 5.0) -> dict:
    """Offer `rate` jobs/s; for every journal entry, time from its post to its visibility in the view."""
    redis = system.redis
    samples: list[float] = []
    stop = threading.Event()
    watcher = threading.Thread(target=_watch_view, args=(system, samples, stop))
    watcher.start()
    spec = encode(make_jobspec(command=["tick"]))
    tick, per_tick = 0.05, max(1, int(rate * 0.05))
    started = time.monotonic()
    for step in range(int(seconds / tick)):
        accept_jobs(redis, [spec] * per_tick, USERS[2])
        time.sleep(max(0.0, started + (step + 1) * tick - time.monotonic()))
    wait_until(system.view_caught_up, 60, "the view to catch up")
    time.sleep(0.05)
    stop.set()
    watcher.join()
    return percentiles(samples)


def _watch_view(system: System, samples: list[float], stop: threading.Event) -> None:
    from jobjournal.common.connection import connect

    redis = connect(system.settings)
    generation = int(redis.get(LEGACY.view_current()))
    meta = LEGACY.view_meta(generation)
    seen = redis.hget(meta, "cursor").decode()
    while not stop.is_set():
        cursor = redis.hget(meta, "cursor").decode()
        if cursor != seen:
            now_ms = time.time() * 1000
            for entry_id, _ in redis.xrange(LEGACY.journal(), f"({seen}", cursor):
                samples.append(now_ms - int(entry_id.split(b"-")[0]))
            seen = cursor
        time.sleep(0.0005)
    redis.close()


def rq_noop_rate(system: System, count: int = 2000, workers: int = 3) -> float:
    """rq's own ceiling for one-job requests on this machine: a no-op task, the same client
    threads and as many SimpleWorkers as ingest has, nothing of jobjournal in the way."""
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "rq.cli", "worker", "-w", "rq.SimpleWorker", "-u", system.url, "-q", "bench-noop"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        for _ in range(workers)
    ]
    try:
        wait_until(lambda: len(Worker.all(connection=system.redis)) >= workers, 30, "rq workers", 0.05)
        done = _in_threads(count, lambda own: Queue("bench-noop", connection=own)
                           .enqueue("builtins.len", [1], result_ttl=10).latest_result(timeout=10), system)
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()
    return round(done, 1)


def _in_threads(count: int, call, system: System, threads: int = 8) -> float:
    """Run `call(client)` `count` times from `threads` threads (a client each); calls per second."""
    from jobjournal.common.connection import connect

    def run(n):
        own = connect(system.settings)
        for _ in range(n):
            call(own)
        own.close()

    workers = [threading.Thread(target=run, args=(count // threads,)) for _ in range(threads)]
    started = time.monotonic()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return count // threads * threads / (time.monotonic() - started)


def submit_rates(system: System, singles: int = 2000, batches: int = 10, meter: Meter | None = None) -> dict:
    """Jobs per second through the rq queue until the manager has them: one per request, and 1000.
    With a `meter`, also `cpu_s`: the CPU seconds each process spent in each of the two phases
    (a phase's jobs go on running into the next: the manager's share is approximate)."""
    redis = system.redis
    spec = make_jobspec(command=["one"])
    ids: list[int] = []
    before = meter.sample() if meter else {}
    started = time.monotonic()
    _in_threads(singles, lambda own: ids.extend(client.submit(own, [spec], userid=USERS[3])), system)
    _wait_accepted(redis, ids)
    single = len(ids) / (time.monotonic() - started)
    single_jobs = len(ids)
    middle = meter.sample() if meter else {}

    ids = []
    started = time.monotonic()
    for _ in range(batches):
        ids += client.submit(redis, [spec] * REQUEST, userid=USERS[4])
    _wait_accepted(redis, ids)
    batched = len(ids) / (time.monotonic() - started)
    cpu = None
    if meter:
        cpu = {"single": (spent(before, middle), single_jobs), "batched": (spent(middle, meter.sample()), len(ids))}
    wait_until(lambda: all(redis.zscore(LEGACY.inactive_jobs(), j) for j in ids[-100:]), 300, "the jobs to end", 0.05)
    wait_until(system.view_caught_up, 300, "the view to catch up", 0.01)  # the next figure starts idle
    out: dict = {"single": round(single, 1), "batched": round(batched, 1)}
    if cpu:
        out["cpu_s"] = cpu
    return out


def _wait_accepted(redis, job_ids: list[int]) -> None:
    def accepted():
        pipe = redis.pipeline(transaction=False)
        for job_id in job_ids[-200:]:
            pipe.exists(LEGACY.job_eventlog(job_id))
        return all(pipe.execute())

    wait_until(accepted, 120, "the manager to accept the jobs", 0.002)


QUERIES = {
    "list_newest_100_all": lambda: q.ListQuery(max_entries=100, attrs=["all"]),
    "list_newest_100_own_user": lambda: q.ListQuery(max_entries=100, attrs=["all"], userid=USERS[5]),
    "list_failed": lambda: q.ListQuery(max_entries=100, attrs=["all"], results=["failed"]),
    "list_since": lambda: q.ListQuery(max_entries=100, attrs=["all"], since=time.time() - 3600),
}


def query_latencies(system: System, runs: int = 300) -> dict:
    redis = system.redis
    job_id = int(redis.zrange(LEGACY.inactive_jobs(), -1, -1)[0])
    layout = read_layout(redis)  # read once, as a long-lived reader (a web view) does
    calls = {name: (lambda make=make: q.list_jobs(redis, make(), layout=layout)) for name, make in QUERIES.items()}
    calls["list_id"] = lambda: q.list_id(redis, job_id, layout=layout)
    calls["stats"] = lambda: q.stats(redis, layout=layout)
    out = {}
    for name, call in calls.items():
        assert call() is not None
        out[name] = percentiles(timed(call, runs))
    return out


def timed(call, runs: int) -> list[float]:
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        call()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def manager_restart(system: System) -> float:
    """Kill the manager; start a new one: time until it has taken a new job in."""
    system.stop("manager", kill=True)
    system.redis.delete(keys.manager_lease())  # as if its lease had run out
    [job_id] = accept_jobs(system.redis, [encode(make_jobspec(command=["after-restart"]))], USERS[0])
    started = time.monotonic()
    system.start("manager", "manager")
    wait_until(lambda: system.redis.xlen(LEGACY.job_eventlog(job_id)) >= 2, 120, "the new manager", 0.002)
    return round(time.monotonic() - started, 3)


def memory_per_inactive_job(system: System, sample: int = 2000) -> dict:
    """Bytes per job: the total from INFO used_memory (everything jobjournal keeps, over the
    empty server), and a breakdown per kind of key from MEMORY USAGE (an estimate that
    counts a stream's preallocated node in full). Taken at rest: after lazily freed keys (old
    views, reply streams) are gone; `transient` is what ingest still holds (rq tasks live 10 s
    after they ran, the inbox until its next trim)."""
    redis = system.redis
    wait_until(lambda: redis.info("memory").get("lazyfree_pending_objects", 0) == 0, 60, "lazy frees", 0.05)
    generation = int(redis.get(LEGACY.view_current()))
    inactive = redis.zcard(LEGACY.inactive_jobs())
    job_ids = [int(j) for j in redis.zrange(LEGACY.inactive_jobs(), 0, sample - 1)]
    per_job = {
        "eventlog": _mean_usage(redis, [LEGACY.job_eventlog(j) for j in job_ids]),
    }
    total_jobs = inactive + redis.scard(LEGACY.active_jobs())
    shared = {
        "journal": _usage(redis, LEGACY.journal()) / total_jobs,
        "job_sets": (_usage(redis, LEGACY.inactive_jobs()) + _usage(redis, LEGACY.active_jobs())) / total_jobs,
        "view_jobs": _usage(redis, LEGACY.view_jobs(generation)) / total_jobs,
        "view_lists": sum(_usage(redis, k) for k in _view_lists(redis, generation)) / total_jobs,
        "transient": (sum(_usage(redis, k) for k in redis.scan_iter(match="rq:*", count=10000))
                      + _usage(redis, keys.manager_inbox())) / total_jobs,
    }
    breakdown = {name: round(value, 1) for name, value in {**per_job, **shared}.items()}
    used = redis.info("memory")["used_memory"] - system.baseline_memory
    return {
        "bytes": round(used / total_jobs, 1),
        "memory_usage_sum": round(sum(breakdown.values()), 1),
        "breakdown": breakdown,
    }


def _view_lists(redis, generation: int) -> list[str]:
    prefix = LEGACY.view_list(generation, "")
    return [
        key.decode()
        for key in redis.scan_iter(match=LEGACY.view_pattern(generation), count=1000)
        if key.decode()[len(prefix) :] not in ("jobs", "meta", "stats")
    ]


def _usage(redis, key: str) -> int:
    return int(redis.memory_usage(key, samples=0) or 0)


def _mean_usage(redis, names: list[str]) -> float:
    pipe = redis.pipeline(transaction=False)
    for name in names:
        pipe.memory_usage(name, samples=0)
    values = [v or 0 for v in pipe.execute()]
    return sum(values) / max(1, len(values))


def rq_finished_listing(system: System, count: int, runs: int = 100) -> dict:
    """`count` finished rq jobs; list the newest 100 the way rq-dashboard does (fetch_job per id)."""
    redis = system.redis
    queue = Queue("bench", connection=redis)
    registry = FinishedJobRegistry(queue=queue)
    pipe = redis.pipeline(transaction=False)
    now = time.time()
    for index in range(count):
        job = Job.create("builtins.print", args=(index,), connection=redis, id=f"bench-{index}", origin="bench",
                         description=f"app{index % 7}", result_ttl=-1)
        job.set_status(JobStatus.FINISHED, pipeline=pipe)
        job.ended_at = job.started_at = job.enqueued_at = job.created_at
        job.save(pipeline=pipe)
        registry.add(job, ttl=int(10**7 - index), pipeline=pipe)
        if index % 1000 == 999:
            pipe.execute()
    pipe.execute()
    del now

    def listing():
        job_ids = registry.get_job_ids(0, 99)
        jobs = [queue.fetch_job(job_id) for job_id in job_ids]
        return [_serialize_rq(job) for job in jobs]

    assert len(listing()) == 100
    return percentiles(timed(listing, runs))


def _serialize_rq(job) -> dict:
    return {
        "id": job.id,
        "created_at": job.created_at.isoformat() if job.created_at else None,
        "ended_at": job.ended_at.isoformat() if job.ended_at else None,
        "exc_info": str(job.exc_info) if job.exc_info else None,
        "description": job.description,
    }
