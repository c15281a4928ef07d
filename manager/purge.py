"""Purging inactive jobs: choosing them (age and count limits) and removing them, per partition."""

from __future__ import annotations

import heapq
from collections import defaultdict

from jobjournal.common.formats import JOURNAL_VERSION
from jobjournal.common.layout import Layout
from jobjournal.common.scripts import run_script
from jobjournal.manager.scripts import PURGE_JOBS

CHUNK_JOBS = 500


def purge_candidates(redis, layout: Layout, age_limit: float | None, num_limit: int | None, now: float) -> list[int]:
    """Inactive jobs beyond the limits, oldest first (over every partition: a count limit keeps
    the newest `num_limit` of the whole store)."""
    parts = layout.partitions
    chosen: list[tuple[float, int]] = []
    if num_limit is not None and num_limit >= 0:
        with redis.pipeline(transaction=False) as pipe:
            for part in parts:
                pipe.zcard(part.inactive_jobs())
            excess = sum(pipe.execute()) - num_limit
        if excess > 0:
            chosen = heapq.nsmallest(excess, _scored(redis, parts, lambda p, pipe: pipe.zrange(
                p.inactive_jobs(), 0, excess - 1, withscores=True)))
    if age_limit is not None and age_limit > 0:
        old = sorted(_scored(redis, parts, lambda p, pipe: pipe.zrangebyscore(
            p.inactive_jobs(), "-inf", f"({now - age_limit}", withscores=True)))
        if len(old) > len(chosen):
            chosen = old
    return [job_id for _, job_id in chosen]


def _scored(redis, parts, read) -> list[tuple[float, int]]:
    """(t_inactive, job id) pairs that `read(part, pipe)` asks each partition for, in one round trip."""
    with redis.pipeline(transaction=False) as pipe:
        for part in parts:
            read(part, pipe)
        return [(score, int(member)) for found in pipe.execute() for member, score in found]


def purge_jobs(redis, layout: Layout, lease_token: str, maxlen: int, job_ids, now: float) -> list[int]:
    """Remove inactive jobs entirely, each partition's with one script call per chunk; returns those
    purged (active ones are left alone). LeaseLost if this manager was deposed."""
    by_partition = defaultdict(list)
    for job_id in job_ids:
        by_partition[layout.partition_of(job_id)].append(job_id)
    purged: list[int] = []
    for part, ids in by_partition.items():
        for start in range(0, len(ids), CHUNK_JOBS):
            chunk = ids[start : start + CHUNK_JOBS]
            job_keys = []
            for job_id in chunk:
                job_keys += [part.job_eventlog(job_id), part.job_environment(job_id), part.job_output(job_id)]
            fixed = [part.manager_fence(), part.journal(), part.journal_head(), part.inactive_jobs()]
            args = [lease_token, JOURNAL_VERSION, maxlen, repr(now), *chunk]
            done = run_script(redis, PURGE_JOBS, fixed + job_keys, args)
            purged += [int(job_id) for job_id in done]
    return purged
