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
from bench.system import System
from bench.web import web_figures
from jobjournal.common import keys
from jobjournal.common.keys import LEGACY

RESULTS = Path(__file__).resolve().parent / "results.json"
FIRST_CHECKPOINT = 10_000


def measure(n_jobs: int) -> dict:
    system = System()
    results: dict = {"n_jobs": n_jobs, "machine": f"{platform.machine()}, {_cores()} cores", "scaling": {}}
    try:
        system.start("manager", "manager")
        system.wait_leader(keys.manager_lease())
        system.start("lister", "lister")
        system.wait_leader(LEGACY.lister_lease())
        system.start("ingest", "worker", "--queue", "ingest")
        if n_jobs > FIRST_CHECKPOINT:
            _step(f"populating {FIRST_CHECKPOINT} jobs")
            f.end_to_end(system, FIRST_CHECKPOINT)
            results["scaling"][str(FIRST_CHECKPOINT)] = _checkpoint(system)
        _step(f"populating to {n_jobs} jobs (end to end)")
        e2e = f.end_to_end(system, n_jobs - FIRST_CHECKPOINT if n_jobs > FIRST_CHECKPOINT else n_jobs)
        results["end_to_end"] = e2e
        results["end_to_end_jobs_per_s"] = e2e["jobs_per_s"]
        results["events_per_s"] = e2e["events_per_s"]
        _step("adding about 1000 active jobs")
        f.add_active_jobs(system, 1000)
        checkpoint = _checkpoint(system)
        results["scaling"][str(n_jobs)] = checkpoint
        results["cold_rebuild_s"] = checkpoint["cold_rebuild_s"]
        results["naive_rebuild_s"] = checkpoint["naive_rebuild_s"]
        results["cold_vs_naive"] = round(checkpoint["naive_rebuild_s"] / checkpoint["cold_rebuild_s"], 2)
        results["warm_restart_s"] = {k: v["warm_restart_s"] for k, v in results["scaling"].items()}
        results["query_ms"] = checkpoint["query_ms"]
        results["redis_bytes_per_inactive_job"] = checkpoint["memory"]["bytes"]
        results["redis_bytes_breakdown"] = checkpoint["memory"]["breakdown"]
        results["redis_bytes_memory_usage_sum"] = checkpoint["memory"]["memory_usage_sum"]
        _step("the web view: listings over HTTP beside in process, live-update delay at 100 jobs/s")
        results["web"] = web_figures(system)
        _step("event to view latency at 1000 jobs/s")
        results["event_to_view_ms"] = f.event_to_view(system)
        _step("submission rates")
        system.start("ingest2", "worker", "--queue", "ingest")
        system.start("ingest3", "worker", "--queue", "ingest")
        results["submit_jobs_per_s"] = f.submit_rates(system)
        results["rq_noop_jobs_per_s"] = f.rq_noop_rate(system)
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
    results["targets"] = targets(results)
    return results


def _checkpoint(system: System) -> dict:
    inactive = system.redis.zcard(LEGACY.inactive_jobs())
    _step(f"checkpoint at {inactive} inactive jobs: rebuilds, restarts, queries, memory")
    cold = f.cold_rebuild(system)
    return {
        "inactive_jobs": inactive,
        "cold_rebuild_s": cold["seconds"],
        "cold_rebuild_samples_s": cold["samples"],
        "naive_rebuild_s": f.naive_rebuild(system),
        "warm_restart_s": f.warm_restart(system),
        "query_ms": f.query_latencies(system),
        "memory": f.memory_per_inactive_job(system),
    }


def targets(r: dict) -> dict:
    warm = r["warm_restart_s"]
    big, small = warm.get(str(r["n_jobs"])), warm.get(str(FIRST_CHECKPOINT))
    checks = {
        "cold_rebuild_s <= 2.0": (r["cold_rebuild_s"], r["cold_rebuild_s"] <= 2.0),
        "cold_vs_naive >= 3": (r["cold_vs_naive"], r["cold_vs_naive"] >= 3),
        "warm_restart_s <= 0.1": (big, big <= 0.1),
        "end_to_end_jobs_per_s >= 2000": (r["end_to_end_jobs_per_s"], r["end_to_end_jobs_per_s"] >= 2000),
        "event_to_view_ms p99 <= 50": (r["event_to_view_ms"]["p99"], r["event_to_view_ms"]["p99"] <= 50),
        "submit single >= 500": (r["submit_jobs_per_s"]["single"], r["submit_jobs_per_s"]["single"] >= 500),
        "submit batched >= 5000": (r["submit_jobs_per_s"]["batched"], r["submit_jobs_per_s"]["batched"] >= 5000),
        "manager_restart_s <= 2.0": (r["manager_restart_s"], r["manager_restart_s"] <= 2.0),
        "redis_bytes_per_inactive_job <= 2000": (
            r["redis_bytes_per_inactive_job"], r["redis_bytes_per_inactive_job"] <= 2000
        ),
        "list_vs_rq >= 10": (r["list_vs_rq"], r["list_vs_rq"] >= 10),
    }
    web, sse = r["web"], r["web"]["sse"]
    for name, label in (("list_page", "list page"), ("json_list", "json list"), ("json_failed", "json failed")):
        p99 = web[name]["web_ms"]["p99"]
        checks[f"web {label} p99 <= 20 ms"] = (p99, p99 <= 20)
    sse_p99 = sse["post_to_sse_client_ms"]["p99"]
    checks["web sse delay p99 <= 100 ms"] = (sse_p99, sse_p99 <= 100 and sse["missed"] == 0)
    if small:
        ratio = round(big / small, 2)
        checks["warm_restart 100K/10K <= 2"] = (ratio, ratio <= 2)
    for name, value in r["query_ms"].items():
        checks[f"query {name} p99 <= 5 ms"] = (value["p99"], value["p99"] <= 5)
    return {name: {"value": value, "met": met} for name, (value, met) in checks.items()}


def print_table(results: dict) -> None:
    rows = [(name, check["value"], "yes" if check["met"] else "NO") for name, check in results["targets"].items()]
    width = max(len(name) for name, _, _ in rows)
    print(f"\n{'target':<{width}}  {'value':>12}  met")
    for name, value, met in rows:
        print(f"{name:<{width}}  {value:>12}  {met}")
    print(f"\nn_jobs {results['n_jobs']}; end to end {results['end_to_end']}")
    print(f"query_ms {json.dumps(results['query_ms'])}")
    print(f"submit {results['submit_jobs_per_s']}; rq's own ceiling (no-op task, one per request) "
          f"{results['rq_noop_jobs_per_s']} jobs/s")
    print(f"memory breakdown (bytes per job) {json.dumps(results['redis_bytes_breakdown'])}")
    _print_web(results["web"])
    for size, point in results["scaling"].items():
        print(f"at {size}: cold {point['cold_rebuild_s']}s, naive {point['naive_rebuild_s']}s, "
              f"warm {point['warm_restart_s']}s, bytes/job {point['memory']['bytes']}, "
              f"newest-100 p50 {point['query_ms']['list_newest_100_all']['p50']} ms")


def _print_web(web: dict) -> None:
    listings = "; ".join(
        f"{name} {v['web_ms']['p50']}/{v['web_ms']['p99']} vs {v['in_process_ms']['p50']}/{v['in_process_ms']['p99']} "
        f"(x{v['web_vs_in_process']['p50']}/x{v['web_vs_in_process']['p99']})"
        for name, v in web.items() if name != "sse"
    )
    sse = web["sse"]
    print(f"web p50/p99 ms, over HTTP vs the same list_page in process (web/in-process): {listings}")
    print(f"web sse at {sse['jobs_per_s']} jobs/s, p50/p99 ms: post to SSE client "
          f"{sse['post_to_sse_client_ms']['p50']}/{sse['post_to_sse_client_ms']['p99']} over {sse['entries']} "
          f"entries ({sse['missed']} missed); submit accepted to SSE client "
          f"{sse['submit_accept_to_sse_client_ms']['p50']}/{sse['submit_accept_to_sse_client_ms']['p99']}")


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
