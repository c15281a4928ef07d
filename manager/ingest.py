"""Ingest: the rq task that validates submissions, gives them ids, and hands them over.

Every jobspec of a request is validated before anything is written, so an invalid one
leaves no job behind; the jobs then enter the manager's inbox in one entry.
"""

from __future__ import annotations

import time

from rq import get_current_job

from common import keys, messages
from common.errors import InvalidJobspec
from common.ids import generator_from_redis
from common.jobspec import parse_jobspec

MAX_JOBS_PER_REQUEST = 10000


def ingest(jobspecs: list[bytes], userid: int, max_jobspec_bytes: int = 65536) -> dict:
    """rq entry point: {"ids": [...]} or {"error": "..."}; never raises for bad input."""
    try:
        return {"ids": accept_jobs(get_current_job().connection, jobspecs, userid, max_jobspec_bytes)}
    except InvalidJobspec as err:
        return {"error": str(err)}


def accept_jobs(redis, jobspecs: list[bytes], userid: int, max_jobspec_bytes: int = 65536) -> list[int]:
    if not jobspecs:
        raise InvalidJobspec("no jobspec given")
    if not 0 <= userid < 2**32:
        raise InvalidJobspec(f"invalid userid {userid}")
    if len(jobspecs) > MAX_JOBS_PER_REQUEST:
        raise InvalidJobspec(f"{len(jobspecs)} jobs in one request; the limit is {MAX_JOBS_PER_REQUEST}")
    specs = []
    for index, document in enumerate(jobspecs):
        try:
            specs.append(parse_jobspec(document, max_jobspec_bytes))
        except InvalidJobspec as err:
            prefix = f"jobspec {index + 1} of {len(jobspecs)}: " if len(jobspecs) > 1 else ""
            raise InvalidJobspec(prefix + str(err)) from err
    generator = generator_from_redis(redis)
    now = time.time()
    jobs = [
        messages.NewJob(id=generator.next_id(), userid=userid, t_submit=now, jobspec=spec) for spec in specs
    ]
    redis.xadd(keys.manager_inbox(), {"msg": messages.encode(messages.SubmitJobs(jobs=jobs))})
    return [job.id for job in jobs]
