"""Ingest: the rq task that validates submissions, gives them ids, and hands them over.

Every jobspec of a request is validated before anything is written, so an invalid one
leaves no job behind; the jobs then enter the manager's inbox in one entry.
"""

from __future__ import annotations

import time

import msgspec
from rq import get_current_job

from jobjournal.common import identity, inbox, keys, messages
from jobjournal.common.errors import InvalidJobspec, JobJournalError
from jobjournal.common.ids import RenewedGenerators, f58, generator_from_redis
from jobjournal.common.jobspec import parse_jobspec
from jobjournal.manager.task_tools import task_tools

MAX_JOBS_PER_REQUEST = 10000


def ingest(jobspecs: list[bytes | str], userid: int, auth: dict | None = None) -> dict:
    """rq entry point: {"ids": [...]} or {"error": "..."}; never raises for bad input.

    Limits come from this worker's settings (JOBJOURNAL_MAX_JOBSPEC_BYTES, ..._SUBMIT_RATE_LIMIT).
    With JOBJOURNAL_IDENTITY=acl the jobs' uid is the one `auth` (user, proof) proves, whatever
    `userid` says (common/identity.py).
    """
    tools = task_tools(get_current_job().connection)
    settings = tools.settings
    try:
        if settings.identity == "acl":
            auth = auth if isinstance(auth, dict) else {}
            body = identity.submission_body(list(jobspecs), userid)
            userid = identity.verified_uid(tools.store, str(auth.get("user", "")), str(auth.get("proof", "")), body,
                                           once=True)
        limits = IngestLimits.of(settings)
        ids = accept_jobs(tools.store, jobspecs, userid, limits=limits, ids=tools.ids, seal_key=tools.seal_key)
        return {"ids": ids}
    except (InvalidJobspec, RateLimited, identity.NotAuthenticated, inbox.NotOnDisk) as err:
        return {"error": str(err)}


class RateLimited(JobJournalError):
    """A user submitted more jobs per second than the limit allows."""


class IngestLimits(msgspec.Struct, frozen=True, kw_only=True):
    """What ingest enforces (each from the setting of the same meaning)."""

    max_jobspec_bytes: int = 65536
    rate_limit: int = 0
    """Jobs per second per user (0: none)."""
    max_request_bytes: int = 16 << 20
    on_disk_s: float = 0.0
    """> 0: acknowledge only once the inbox entry is in the AOF on disk, waiting at most this long."""

    @classmethod
    def of(cls, settings) -> IngestLimits:
        return cls(max_jobspec_bytes=settings.max_jobspec_bytes, rate_limit=settings.submit_rate_limit,
                   max_request_bytes=settings.max_request_bytes, on_disk_s=settings.submit_on_disk_s)


def accept_jobs(
    redis,
    jobspecs: list[bytes | str],
    userid: int,
    *,
    limits: IngestLimits = IngestLimits(),  # noqa: B008 - frozen, shared safely
    ids: RenewedGenerators | None = None,
    seal_key: bytes | None = None,
) -> list[int]:
    """Validate the jobspecs, give the jobs ids and hand them to the manager in one inbox entry;
    their ids. InvalidJobspec or RateLimited (nothing written), NotOnDisk (written, not confirmed)."""
    if not jobspecs:
        raise InvalidJobspec("no jobspec given")
    if not 0 <= userid < 2**32:
        raise InvalidJobspec(f"invalid userid {userid}")
    if len(jobspecs) > MAX_JOBS_PER_REQUEST:
        raise InvalidJobspec(f"{len(jobspecs)} jobs in one request; the limit is {MAX_JOBS_PER_REQUEST}")
    check_request_size(jobspecs, limits.max_request_bytes)
    specs = []
    for index, document in enumerate(jobspecs):
        try:
            specs.append(parse_jobspec(document, limits.max_jobspec_bytes))
        except InvalidJobspec as err:
            prefix = f"jobspec {index + 1} of {len(jobspecs)}: " if len(jobspecs) > 1 else ""
            raise InvalidJobspec(prefix + str(err)) from err
    if limits.rate_limit:
        _charge(redis, userid, len(specs), limits.rate_limit)
    generator = ids.generator() if ids else generator_from_redis(redis)
    now = time.time()
    jobs = [
        messages.NewJob(id=generator.next_id(), userid=userid, t_submit=now, jobspec=spec) for spec in specs
    ]
    request = identity.sealed(seal_key or identity.ingest_key(redis), messages.SubmitJobs(jobs=jobs))
    if limits.on_disk_s:
        inbox.send_on_disk(redis, request, limits.on_disk_s, what=f"jobs {_id_range(jobs)}")
    else:
        inbox.send(redis, request)
    return [job.id for job in jobs]


def _id_range(jobs) -> str:
    first, last = f58(jobs[0].id), f58(jobs[-1].id)
    return first if first == last else f"{first}..{last}"


def _charge(redis, userid: int, count: int, limit: int) -> None:
    """Count `count` jobs against the user's current second; refuse (uncounted) past `limit`."""
    key = keys.submit_rate(userid, int(time.time()))
    pipe = redis.pipeline(transaction=True)
    pipe.incrby(key, count)
    pipe.expire(key, 2)
    total = pipe.execute()[0]
    if total > limit:
        redis.decrby(key, count)
        raise RateLimited(f"rate limit: user {userid} may submit {limit} jobs per second")


def check_request_size(jobspecs: list[bytes | str], limit: int) -> None:
    """InvalidJobspec if the jobspecs of one request hold more than `limit` bytes in all."""
    total = sum(len(document) for document in jobspecs)
    if total > limit:
        raise InvalidJobspec(
            f"the request holds {total:,} bytes of jobspecs ({len(jobspecs)} of {total // len(jobspecs):,} bytes); "
            f"the limit is {limit:,} (JOBJOURNAL_MAX_REQUEST_BYTES): submit fewer copies at a time, or trim the "
            "environment (--env=-* ...)"
        )
