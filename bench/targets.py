"""The targets of `make bench` (issue 17's table: ratios to same-run references where it says so; the
web targets of issue 16; the restart targets from before), each checked on one run's results.

Each target is {"value", "met"}: `met` is True, False, or None when this run cannot measure it (a
figure at 100K or 1M jobs in a smaller run: `skipped` says why, and `value` is then the figure at the
run's own size, for information). A missed target also has `parts`: the measured figures that make
it up (bench/report.py prints them), so a reader can say what limits it.
"""

from __future__ import annotations

import os

K100, M1 = "100000", "1000000"


def targets(r: dict) -> dict:
    checks: dict[str, dict] = {}

    def check(name: str, value, met: bool | None, parts=(), skipped: str = "") -> None:
        entry: dict = {"value": value, "met": met}
        if met is None:
            entry["skipped"] = skipped
        elif not met:
            entry["parts"] = list(parts() if callable(parts) else parts)
        checks[name] = entry

    scaling, ratios, n = r["scaling"], r["ratios"], str(r["n_jobs"])

    def at(size: str, name: str, limit, figure, below: bool, parts=()) -> None:
        """A target on `figure(point)` at the checkpoint of `size` jobs; skipped (showing the figure
        at N) without one."""
        point = scaling.get(size)
        if point is None:
            check(name, figure(scaling[n]), None, skipped=f"no checkpoint at {size} jobs (the value is at {n})")
            return
        value = figure(point)
        check(name, value, value <= limit if below else value >= limit, lambda: parts(point) if parts else ())

    at(K100, "cold rebuild at 100K: naive walk / cold >= 8", 8,
       lambda p: round(p["naive_rebuild_s"] / p["cold_rebuild_s"], 2), False, lambda p: _cold_parts(p))
    check("cold rebuild / read floor <= 2", ratios["cold_over_read_floor"], ratios["cold_over_read_floor"] <= 2,
          lambda: _cold_parts(scaling[n]))
    if K100 in scaling and M1 in scaling:
        ratio = ratios["cold_1m_over_100k"]
        check("cold rebuild at 1M / at 100K <= 10.5", ratio, ratio <= 10.5,
              lambda: _cold_parts(scaling[K100]) + _cold_parts(scaling[M1]))
    else:
        check("cold rebuild at 1M / at 100K <= 10.5", None, None, skipped="needs checkpoints at 100K and 1M")
    _throughput(r, check)
    e2v = r["event_to_view_ms_half_capacity"]["p99"]
    half = r["event_to_view_half_capacity_jobs_per_s"]
    check("event-to-view p99 at half capacity <= 20 ms", e2v, e2v <= 20, lambda: _latency_parts(r))
    at_1000 = r["event_to_view_ms"]["p99"]
    if half >= 1000:
        check("event-to-view p99 at 1000 jobs/s <= 50 ms", at_1000, at_1000 <= 50, lambda: _latency_parts(r))
    else:
        check("event-to-view p99 at 1000 jobs/s <= 50 ms", at_1000, None,
              skipped=f"1000 jobs/s is past half this machine's capacity ({half} jobs/s)")
    for size, label in ((K100, "100K"), (M1, "1M")):
        if size not in scaling:  # one row for all the queries: the slowest p99 at N
            at(size, f"query p99 at {label} <= 3 ms, each", 3,
               lambda p: max(v["p99"] for v in p["query_ms"].values()), True)
            continue
        for query in scaling[size]["query_ms"]:
            at(size, f"query {query} p99 at {label} <= 3 ms", 3, lambda p, q=query: p["query_ms"][q]["p99"], True,
               lambda p, q=query: [f"{q} at {p['inactive_jobs']} inactive jobs: p50 {p['query_ms'][q]['p50']} ms, "
                                   f"p99 {p['query_ms'][q]['p99']} ms"])
    check("list newest-100 vs rq-dashboard's way >= 30", r["list_vs_rq"], r["list_vs_rq"] >= 30,
          [f"rq-dashboard's way p50 {r['rq_list_newest_100_ms']['p50']} ms; "
           f"ours p50 {r['query_ms']['list_newest_100_all']['p50']} ms"])
    for size, label in ((K100, "100K"), (M1, "1M")):
        at(size, f"Redis bytes per inactive job at {label} <= 1200", 1200, lambda p: p["memory"]["bytes"], True,
           lambda p: [f"bytes per job by kind of key (MEMORY USAGE) {p['memory']['breakdown']}"])
    _rss_growth(r, check)
    _web(r, check)
    _restarts(r, check)
    return checks


def _throughput(r: dict, check) -> None:
    rq, ratios, submit = r["rq_noop_jobs_per_s"], r["ratios"], r["submit_jobs_per_s"]
    cpu = r["cpu_ms_per_job"]
    value = ratios["e2e_over_rq_noop"]
    check("end-to-end / rq no-op >= 8", value, value >= 8, lambda: [
        f"end to end {r['end_to_end_jobs_per_s']} jobs/s; rq's no-op ceiling {rq} jobs/s; the write floor "
        f"{r['write_floor']['jobs_per_s']} jobs/s (end to end is {ratios['e2e_over_write_floor']} of it)",
        *_cpu_parts("end to end", cpu["end_to_end"]),
        f"Redis CPU per job: {cpu['end_to_end'].get('redis')} ms end to end (and "
        f"{cpu['end_to_end'].get('redis_forks')} in AOF rewrites), {cpu['write_floor'].get('redis')} ms for the "
        f"write floor's commands (and {cpu['write_floor'].get('redis_forks')})",
    ])
    for kind, label, limit in (("single", "submit single", 1.9), ("batched", "submit batched", 20)):
        value = ratios[f"submit_{kind}_over_rq_noop"]
        check(f"{label} / rq no-op >= {limit}", value, value >= limit, lambda kind=kind: [
            f"submit {kind} {submit[kind]} jobs/s (3 ingest workers); rq's no-op ceiling {rq} jobs/s "
            "(3 SimpleWorkers, a no-op task)",
            *_cpu_parts(f"submit {kind}", cpu[f"submit_{kind}"]),
            *_cpu_parts("rq's no-op ceiling", cpu.get("rq_noop", {})),
        ])


def _cpu_parts(phase: str, per_job: dict) -> list[str]:
    """CPU ms per job of each process in a phase, the largest named, and what the cores would allow."""
    if not per_job:
        return []
    total = sum(per_job.values())
    largest = max(per_job, key=per_job.get)
    cores = os.cpu_count() or 1
    shares = ", ".join(f"{name} {ms}" for name, ms in per_job.items())
    ingest = [ms for name, ms in per_job.items() if name.startswith("ingest")]
    if len(ingest) > 1:
        shares += f" (the ingest workers {round(sum(ingest), 4)} in all)"
    return [f"CPU ms per job, {phase}: {shares}; total {round(total, 4)}; the largest: {largest} "
            f"({round(100 * per_job[largest] / total) if total else 0}%); {cores} cores at that cost "
            f"would allow {round(cores * 1000 / total) if total else '-'} jobs/s, one core for {largest} "
            f"{round(1000 / per_job[largest]) if per_job[largest] else '-'} jobs/s"]


def _cold_parts(point: dict) -> list[str]:
    floor = point["read_floor"]
    cold, startup = point["cold_rebuild_s"], point.get("cold_rebuild_startup_s")
    rebuild = round(cold - startup, 3) if startup is not None else None
    return [
        f"at {point['inactive_jobs']} inactive jobs: cold {cold} s (samples {point['cold_rebuild_samples_s']}), of "
        f"which the lister process's start to its lease {startup} s (its CPU "
        f"{point['cold_rebuild_lister_startup_cpu_s']} s) and the rebuild after it {rebuild} s; "
        f"naive walk {point['naive_rebuild_s']} s",
        f"read floor {floor['seconds']} s (samples {floor['samples']}; reading the written reply again "
        f"{floor['reread_s']} s): {floor.get('jobs')} jobs, {floor.get('reply_entries')} entries, "
        f"{round(floor.get('reply_bytes', 0) / 1e6, 1)} MB",
        *_cpu_parts("cold rebuild", point["cpu_ms_per_job_cold_rebuild"]),
        *_cpu_parts("read floor", floor["cpu_ms_per_job"]),
    ]


def _latency_parts(r: dict) -> list[str]:
    half = r["event_to_view_ms_half_capacity"]
    return [f"offered {r['event_to_view_half_capacity_jobs_per_s']} jobs/s (half of end to end "
            f"{r['end_to_end_jobs_per_s']}): p50 {half['p50']} ms, p99 {half['p99']} ms; at 1000 jobs/s p50 "
            f"{r['event_to_view_ms']['p50']} ms, p99 {r['event_to_view_ms']['p99']} ms"]


def _rss_growth(r: dict, check) -> None:
    rss = r["rss_mb"]
    name = "manager + lister RSS growth from 100K to 1M <= 300 MB"
    small, big = rss.get(K100), rss.get(M1)
    if small is None or big is None:
        check(name, None, None, skipped="needs checkpoints at 100K and 1M")
        return
    growth = round(big["manager"] + big["lister"] - small["manager"] - small["lister"], 1)
    check(name, growth, growth <= 300, [f"RSS MB at 100K {small}, at 1M {big}"])


def _web(r: dict, check) -> None:
    web, sse = r["web"], r["web"]["sse"]
    for name, label in (("list_page", "list page"), ("json_list", "json list"), ("json_failed", "json failed")):
        p99 = web[name]["web_ms"]["p99"]
        check(f"web {label} p99 <= 20 ms", p99, p99 <= 20,
              [f"over HTTP p50/p99 {web[name]['web_ms']['p50']}/{p99} ms; the same in process "
               f"{web[name]['in_process_ms']['p50']}/{web[name]['in_process_ms']['p99']} ms"])
    sse_p99 = sse["post_to_sse_client_ms"]["p99"]
    check("web sse delay p99 <= 100 ms", sse_p99, sse_p99 <= 100 and sse["missed"] == 0,
          [f"p50 {sse['post_to_sse_client_ms']['p50']} ms, {sse['missed']} of {sse['entries']} missed"])


def _restarts(r: dict, check) -> None:
    """Kept from before issue 17 (not in its table)."""
    warm = r["warm_restart_s"]
    big, small = warm.get(str(r["n_jobs"])), warm.get("10000")
    check("warm restart <= 0.1 s", big, big <= 0.1, [f"warm restart by size {warm}"])
    if small and str(r["n_jobs"]) != "10000":
        ratio = round(big / small, 2)
        check(f"warm restart at {r['n_jobs']} / at 10K <= 2", ratio, ratio <= 2, [f"warm restart by size {warm}"])
    check("manager restart <= 2 s", r["manager_restart_s"], r["manager_restart_s"] <= 2.0,
          [f"manager restart {r['manager_restart_s']} s"])
