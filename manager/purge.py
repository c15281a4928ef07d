"""Purging inactive jobs: choosing them (age and count limits) and removing them."""

from __future__ import annotations

from jobjournal.common import keys
from jobjournal.common.formats import JOURNAL_VERSION
from jobjournal.common.scripts import run_script
from jobjournal.manager.scripts import PURGE_JOBS

CHUNK_JOBS = 500


def purge_candidates(redis, age_limit: float | None, num_limit: int | None, now: float) -> list[int]:
    """Inactive jobs beyond the limits, oldest first."""
    chosen: list[bytes] = []
    if num_limit is not None and num_limit >= 0:
        excess = redis.zcard(keys.inactive_jobs()) - num_limit
        if excess > 0:
            chosen = redis.zrange(keys.inactive_jobs(), 0, excess - 1)
    if age_limit is not None and age_limit > 0:
        old = redis.zrangebyscore(keys.inactive_jobs(), "-inf", f"({now - age_limit}")
        if len(old) > len(chosen):
            chosen = old
    return [int(job_id) for job_id in chosen]


def purge_jobs(redis, lease_token: str, maxlen: int, job_ids, now: float) -> list[int]:
    """Remove inactive jobs entirely; returns those purged (active ones are left alone).
    LeaseLost if this manager was deposed."""
    purged: list[int] = []
    job_ids = list(job_ids)
    for start in range(0, len(job_ids), CHUNK_JOBS):
        chunk = job_ids[start : start + CHUNK_JOBS]
        job_keys = []
        for job_id in chunk:
            job_keys += [keys.job_eventlog(job_id), keys.job_environment(job_id)]
        fixed = [keys.manager_lease(), keys.journal(), keys.journal_head(), keys.inactive_jobs()]
        args = [lease_token, JOURNAL_VERSION, maxlen, repr(now), *chunk]
        done = run_script(redis, PURGE_JOBS, fixed + job_keys, args)
        purged += [int(job_id) for job_id in done]
    return purged
