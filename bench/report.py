"""Printing one run of `make bench`: the targets, each figure beside its same-run reference, CPU per
job per process, memory, and for each missed target the measured parts that make it up."""

from __future__ import annotations

import json

MET = {True: "yes", False: "NO", None: "skip"}


def print_table(results: dict) -> None:
    _print_targets(results["targets"])
    _print_references(results)
    _print_cpu(results["cpu_ms_per_job"])
    _print_rss(results["scaling"])
    _print_missed(results["targets"])
    print(f"\nn_jobs {results['n_jobs']}; end to end {results['end_to_end']}")
    print(f"query_ms {json.dumps(results['query_ms'])}")
    print(f"submit {results['submit_jobs_per_s']}; rq's own ceiling (no-op task, one per request) "
          f"{results['rq_noop_jobs_per_s']} jobs/s")
    print(f"event to view at 1000 jobs/s {results['event_to_view_ms']}; at half capacity "
          f"({results['event_to_view_half_capacity_jobs_per_s']} jobs/s) {results['event_to_view_ms_half_capacity']}")
    print(f"memory breakdown (bytes per job) {json.dumps(results['redis_bytes_breakdown'])}")
    _print_web(results["web"])
    for size, point in results["scaling"].items():
        print(f"at {size}: cold {point['cold_rebuild_s']}s (start to lease {point['cold_rebuild_startup_s']}s), "
              f"read floor {point['read_floor_s']}s, naive {point['naive_rebuild_s']}s, "
              f"warm {point['warm_restart_s']}s, bytes/job {point['memory']['bytes']}, "
              f"newest-100 p50 {point['query_ms']['list_newest_100_all']['p50']} ms")


def _print_targets(targets: dict) -> None:
    width = max(len(name) for name in targets)
    print(f"\n{'target':<{width}}  {'value':>12}  met")
    for name, check in targets.items():
        value = "-" if check["value"] is None else check["value"]
        note = f"  ({check['skipped']})" if check["met"] is None else ""
        print(f"{name:<{width}}  {value:>12}  {MET[check['met']]}{note}")


def _print_references(r: dict) -> None:
    ratios, floor = r["ratios"], r["write_floor"]
    rows = [
        ("cold rebuild s / read floor s", r["cold_rebuild_s"], r["read_floor"]["seconds"],
         ratios["cold_over_read_floor"]),
        ("naive walk s / cold rebuild s", r["naive_rebuild_s"], r["cold_rebuild_s"], ratios["naive_over_cold"]),
        ("end to end jobs/s / rq no-op jobs/s", r["end_to_end_jobs_per_s"], r["rq_noop_jobs_per_s"],
         ratios["e2e_over_rq_noop"]),
        ("end to end jobs/s / write floor jobs/s", r["end_to_end_jobs_per_s"], floor["jobs_per_s"],
         ratios["e2e_over_write_floor"]),
        ("submit single jobs/s / rq no-op", r["submit_jobs_per_s"]["single"], r["rq_noop_jobs_per_s"],
         ratios["submit_single_over_rq_noop"]),
        ("submit batched jobs/s / rq no-op", r["submit_jobs_per_s"]["batched"], r["rq_noop_jobs_per_s"],
         ratios["submit_batched_over_rq_noop"]),
    ]
    if "cold_1m_over_100k" in ratios:
        rows.append(("cold rebuild at 1M s / at 100K s", r["scaling"]["1000000"]["cold_rebuild_s"],
                     r["scaling"]["100000"]["cold_rebuild_s"], ratios["cold_1m_over_100k"]))
    width = max(len(row[0]) for row in rows)
    print(f"\n{'figure / same-run reference':<{width}}  {'figure':>10}  {'reference':>10}  {'ratio':>7}")
    for name, figure, reference, ratio in rows:
        print(f"{name:<{width}}  {figure:>10}  {reference:>10}  {ratio:>7}")
    print(f"(write floor: {floor['jobs']} jobs, {floor['commands_per_job']} commands a job, "
          f"{floor['jobs_per_round_trip']} jobs a round trip; read floor: {r['read_floor'].get('jobs')} jobs, "
          f"read again once written {r['read_floor']['reread_s']} s)")


def _print_cpu(cpu: dict) -> None:
    phases = list(cpu)
    processes = sorted({name for per_job in cpu.values() for name in per_job},
                       key=lambda name: -max(cpu[phase].get(name, 0) for phase in phases))
    width = max(len(name) for name in [*processes, "CPU ms per job"])
    print(f"\n{'CPU ms per job':<{width}}" + "".join(f"  {phase:>14}" for phase in phases))
    for name in processes:
        print(f"{name:<{width}}" + "".join(f"  {_ms(cpu[phase].get(name)):>14}" for phase in phases))
    print(f"{'total':<{width}}" + "".join(f"  {_ms(sum(cpu[phase].values())):>14}" for phase in phases))


def _ms(value) -> str:
    return "-" if value is None else f"{value:.4f}"


def _print_rss(scaling: dict) -> None:
    print(f"\n{'RSS MB at inactive jobs':<24}  {'manager':>8}  {'lister':>8}  {'lister after cold':>17}  "
          f"{'lister peak in cold':>19}")
    for point in scaling.values():
        rss = point["rss_mb"]
        print(f"{point['inactive_jobs']:<24}  {rss['manager']:>8}  {rss['lister']:>8}  "
              f"{rss['lister_after_cold_rebuild']:>17}  {rss['lister_peak_in_cold_rebuild']:>19}")


def _print_missed(targets: dict) -> None:
    missed = {name: check for name, check in targets.items() if check["met"] is False}
    if not missed:
        return
    print("\nmissed targets, and the measured parts that make them up:")
    for name, check in missed.items():
        print(f"- {name}: {check['value']}")
        for line in check.get("parts", []):
            print(f"    {line}")


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
