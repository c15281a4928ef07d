"""`make bench [BENCH_JOBS=N]`: the performance figures (docs/redis-layout.md says what each measures), in one run.

Prints a table (figure, value, target, met) and writes bench/results.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

from bench import figures as f
from bench import references as refs
from bench.cpu import Meter, Phase, per_job_ms, reaped_children_s
from bench.report import print_table
from bench.system import System
from bench.targets import targets
from bench.web import web_figures
from jobjournal.common import keys
from jobjournal.common.keys import LEGACY

RESULTS = Path(__file__).resolve().parent / "results.json"
CHECKPOINTS = (10_000, 100_000)
"""Store sizes (inactive jobs) below N where the checkpoint figures are taken too; and at N."""
FIRST_CHECKPOINT = CHECKPOINTS[0]
RQ_NOOP_JOBS = 2000


def measure(n_jobs: int) -> dict:
    system = System()
    results: dict = {"n_jobs": n_jobs, "machine": f"{platform.machine()}, {_cores()} cores", "scaling": {},
                     "cpu_ms_per_job": {}}
    cpu = results["cpu_ms_per_job"]
    try:
        system.start("manager", "manager")
        system.wait_leader(keys.manager_lease())
        system.start("lister", "lister")
        system.wait_leader(LEGACY.lister_lease())
        system.start("ingest", "worker", "--queue", "ingest")
        meter = Meter(system)
        populated = 0
        for size in (size for size in CHECKPOINTS if size < n_jobs):
            _step(f"populating {size} jobs")
            f.end_to_end(system, size - populated)
            populated = size
            results["scaling"][str(size)] = _checkpoint(system, meter)
        _step(f"populating to {n_jobs} jobs (end to end)")
        with Phase(meter) as phase:
            e2e = f.end_to_end(system, n_jobs - populated)
        cpu["end_to_end"] = per_job_ms(phase.seconds, e2e["jobs"])
        results["end_to_end"] = e2e
        results["end_to_end_jobs_per_s"] = e2e["jobs_per_s"]
        results["events_per_s"] = e2e["events_per_s"]
        _step("write floor: the design's writes per job, pipelined from one client")
        floor = refs.write_floor(system, n_jobs, meter)
        cpu["write_floor"] = per_job_ms(floor.pop("cpu_s"), floor["jobs"])
        results["write_floor"] = floor
        _step("adding about 1000 active jobs")
        f.add_active_jobs(system, 1000)
        checkpoint = _checkpoint(system, meter)
        results["scaling"][str(n_jobs)] = checkpoint
        cpu["cold_rebuild"] = checkpoint["cpu_ms_per_job_cold_rebuild"]
        cpu["read_floor"] = checkpoint["read_floor"]["cpu_ms_per_job"]
        results["read_floor"] = checkpoint["read_floor"]
        results["cold_rebuild_s"] = checkpoint["cold_rebuild_s"]
        results["naive_rebuild_s"] = checkpoint["naive_rebuild_s"]
        results["cold_vs_naive"] = round(checkpoint["naive_rebuild_s"] / checkpoint["cold_rebuild_s"], 2)
        results["warm_restart_s"] = {k: v["warm_restart_s"] for k, v in results["scaling"].items()}
        results["query_ms"] = checkpoint["query_ms"]
        results["redis_bytes_per_inactive_job"] = checkpoint["memory"]["bytes"]
        results["redis_bytes_breakdown"] = checkpoint["memory"]["breakdown"]
        results["redis_bytes_memory_usage_sum"] = checkpoint["memory"]["memory_usage_sum"]
        results["rss_mb"] = {str(p["inactive_jobs"]): _rss_pair(p["rss_mb"]) for p in results["scaling"].values()}
        _step("the web view: listings over HTTP beside in process, live-update delay at 100 jobs/s")
        results["web"] = web_figures(system)
        _step("event to view latency at 1000 jobs/s")
        results["event_to_view_ms"] = f.event_to_view(system)
        half = max(1, int(e2e["jobs_per_s"] / 2))
        _step(f"event to view latency at half the end-to-end capacity: {half} jobs/s")
        results["event_to_view_half_capacity_jobs_per_s"] = half
        results["event_to_view_ms_half_capacity"] = f.event_to_view(system, rate=half)
        _step("submission rates")
        system.start("ingest2", "worker", "--queue", "ingest")
        system.start("ingest3", "worker", "--queue", "ingest")
        rates = f.submit_rates(system, meter=meter)
        for phase_name, (seconds, jobs) in rates.pop("cpu_s").items():
            cpu[f"submit_{phase_name}"] = per_job_ms(seconds, jobs)
        results["submit_jobs_per_s"] = rates
        with Phase(meter) as phase:
            workers = reaped_children_s()
            results["rq_noop_jobs_per_s"] = f.rq_noop_rate(system, RQ_NOOP_JOBS)
            workers = reaped_children_s() - workers
        cpu["rq_noop"] = per_job_ms({**phase.seconds, "rq_workers": workers}, RQ_NOOP_JOBS)
        _step("manager restart")
        results["manager_restart_s"] = f.manager_restart(system)
        _step(f"rq: {n_jobs} finished jobs, listed the way rq-dashboard does")
        system.stop("lister")
        system.stop("manager")
        results["rq_list_newest_100_ms"] = f.rq_finished_listing(system, n_jobs)
        ours = results["query_ms"]["list_newest_100_all"]["p50"]
        results["list_vs_rq"] = round(results["rq_list_newest_100_ms"]["p50"] / ours, 1)
    finally:
        system.close()
    results["references"] = {
        "rq_noop_jobs_per_s": results["rq_noop_jobs_per_s"],
        "read_floor_s": results["read_floor"]["seconds"],
        "write_floor_jobs_per_s": results["write_floor"]["jobs_per_s"],
    }
    results["ratios"] = ratios(results)
    results["targets"] = targets(results)
    return results


def _checkpoint(system: System, meter: Meter) -> dict:
    redis = system.redis
    inactive = redis.zcard(LEGACY.inactive_jobs())
    jobs = inactive + redis.scard(LEGACY.active_jobs())
    _step(f"checkpoint at {inactive} inactive jobs: rebuilds, read floor, restarts, queries, memory")
    rss = {"manager": meter.rss_mb("manager"), "lister": meter.rss_mb("lister")}
    cold = f.cold_rebuild(system, meter=meter)
    rss.update(lister_after_cold_rebuild=cold["lister_rss_mb"], lister_peak_in_cold_rebuild=cold["lister_peak_rss_mb"])
    floor = refs.read_floor(system, meter=meter)
    floor["cpu_ms_per_job"] = per_job_ms({k: v / floor["runs"] for k, v in floor.pop("cpu_s").items()}, jobs)
    return {
        "inactive_jobs": inactive,
        "cold_rebuild_s": cold["seconds"],
        "cold_rebuild_samples_s": cold["samples"],
        "cold_rebuild_startup_s": cold["startup_s"],
        "cold_rebuild_lister_startup_cpu_s": cold["lister_startup_cpu_s"],
        "cpu_ms_per_job_cold_rebuild": per_job_ms({k: v / cold["runs"] for k, v in cold["cpu_s"].items()}, jobs),
        "read_floor_s": floor["seconds"],
        "read_floor": floor,
        "naive_rebuild_s": f.naive_rebuild(system),
        "warm_restart_s": f.warm_restart(system),
        "query_ms": f.query_latencies(system),
        "memory": f.memory_per_inactive_job(system),
        "rss_mb": rss,
    }


def _rss_pair(rss: dict) -> dict:
    return {"manager": rss["manager"], "lister": rss["lister"]}


def ratios(r: dict) -> dict:
    """Each figure over its same-run reference (issue 17), and the cold rebuild's growth with size."""
    rq, submit = r["rq_noop_jobs_per_s"], r["submit_jobs_per_s"]
    out = {
        "naive_over_cold": round(r["naive_rebuild_s"] / r["cold_rebuild_s"], 2),
        "cold_over_read_floor": round(r["cold_rebuild_s"] / r["read_floor"]["seconds"], 2),
        "e2e_over_rq_noop": round(r["end_to_end_jobs_per_s"] / rq, 2),
        "submit_single_over_rq_noop": round(submit["single"] / rq, 2),
        "submit_batched_over_rq_noop": round(submit["batched"] / rq, 2),
        "e2e_over_write_floor": round(r["end_to_end_jobs_per_s"] / r["write_floor"]["jobs_per_s"], 3),
    }
    scaling = r["scaling"]
    if "100000" in scaling and "1000000" in scaling:
        out["cold_1m_over_100k"] = round(scaling["1000000"]["cold_rebuild_s"] / scaling["100000"]["cold_rebuild_s"], 2)
    return out


def _step(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)


def _cores() -> int:
    import os

    return os.cpu_count() or 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=100_000, help="inactive jobs in the main scenario")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    started = time.monotonic()
    results = measure(args.jobs)
    results["bench_seconds"] = round(time.monotonic() - started, 1)
    args.output.write_text(json.dumps(results, indent=2) + "\n")
    print_table(results)
    print(f"\nwrote {args.output} in {results['bench_seconds']}s")


if __name__ == "__main__":
    main()
