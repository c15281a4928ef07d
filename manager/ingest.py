"""Ingest: the rq task that validates submissions, gives them ids, and hands them over.

Every jobspec of a request is validated before anything is written, so an invalid one leaves no
job behind; the jobs then enter the manager's inbox in one entry. A `jobjournal worker` runs the
requests of the tasks it takes together (manager/rq_worker.py) through `gather`: each request is
proved, validated and charged on its own (a bad one gets its own error, or fails its own task),
and the jobs of those accepted share inbox entries (each within one request's limits).
"""

from __future__ import annotations

import time
from typing import NamedTuple

import msgspec
from rq import get_current_job

from jobjournal.common import identity, inbox, keys, messages
from jobjournal.common.errors import InvalidJobspec, JobJournalError
from jobjournal.common.ids import IdGenerator, RenewedGenerators, f58, generator_from_redis
from jobjournal.common.jobspec import Jobspec, parse_jobspec
from jobjournal.manager.task_tools import WorkerTools, task_tools

MAX_JOBS_PER_REQUEST = messages.MAX_IDS
"""Also the most jobs of one inbox entry."""


def ingest(jobspecs: list[bytes | str], userid: int, auth: dict | None = None) -> dict:
    """rq entry point: {"ids": [...]} or {"error": "..."}; never raises for bad input.

    Limits come from this worker's settings (JOBJOURNAL_MAX_JOBSPEC_BYTES, ..._SUBMIT_RATE_LIMIT).
    With JOBJOURNAL_IDENTITY=acl the jobs' uid is the one `auth` (user, proof) proves, whatever
    `userid` says (common/identity.py).
    """
    task = get_current_job()
    tools = task_tools(task.connection)
    submission = gather(tools, [Request(jobspecs, userid, auth)])
    send(tools, submission)
    [reply] = submission.replies
    if isinstance(reply, Exception):
        raise reply
    task.args, task.kwargs = (), {}  # rq saves the task with its result: without the environments
    return reply


class Request(NamedTuple):
    """An ingest task's arguments (those of `ingest`)."""

    jobspecs: list[bytes | str]
    userid: int
    auth: dict | None = None


class Entry(NamedTuple):
    """One inbox entry to write: a sealed submission, and the indexes of the requests it carries."""

    message: messages.SubmitJobs
    requests: list[int]


class Submission(NamedTuple):
    replies: list[dict | Exception]
    """Each request's reply ({"ids": [...]} or {"error": "..."}), or the exception that fails its task."""
    entries: list[Entry]


REFUSALS = (InvalidJobspec, identity.NotAuthenticated)
"""What a request gets an error reply for (besides RateLimited and NotOnDisk)."""


def gather(tools: WorkerTools, requests: list[Request]) -> Submission:
    """Each request's reply, and the inbox entries that carry the accepted ones' jobs (not written
    yet: `send`). Ids come from one generator, in the requests' order."""
    limits = IngestLimits.of(tools.settings)
    checked = [_checked(tools, request, limits) for request in requests]
    valid = {index: outcome for index, outcome in enumerate(checked) if isinstance(outcome, tuple)}
    generator = tools.ids.generator() if valid else None
    jobs = {index: with_ids(specs, userid, generator) for index, (userid, specs) in valid.items()}
    replies = [{"ids": [job.id for job in jobs[index]]} if index in jobs else outcome
               for index, outcome in enumerate(checked)]
    return Submission(replies, _entries(tools.seal_key, requests, jobs, limits))


def _checked(tools: WorkerTools, request: Request,
             limits: IngestLimits) -> tuple[int, list[Jobspec]] | dict | Exception:
    """The request's (uid, valid jobspecs), its error reply, or the exception that fails its task."""
    try:
        return _valid_request(tools, request, limits)
    except (*REFUSALS, RateLimited) as err:
        return {"error": str(err)}
    except Exception as err:  # noqa: BLE001 - fails this request's task alone (rq records it)
        return err


def _valid_request(tools: WorkerTools, request: Request, limits: IngestLimits) -> tuple[int, list[Jobspec]]:
    """The request's uid (proved, with identity=acl) and its jobspecs, validated and charged."""
    userid = request.userid
    if tools.settings.identity == "acl":
        auth = request.auth if isinstance(request.auth, dict) else {}
        body = identity.submission_body(list(request.jobspecs), userid)
        userid = identity.verified_uid(tools.store, str(auth.get("user", "")), str(auth.get("proof", "")), body,
                                       once=True)
    return userid, valid_jobspecs(tools.store, request.jobspecs, userid, limits)


def _entries(seal_key: bytes, requests: list[Request], jobs: dict[int, list[messages.NewJob]],
             limits: IngestLimits) -> list[Entry]:
    """The accepted requests' jobs (request index -> its jobs) in as few entries as keep each
    within one request's limits (MAX_JOBS_PER_REQUEST jobs, limits.max_request_bytes of jobspecs)."""
    groups: list[tuple[list[messages.NewJob], list[int]]] = []
    size = 0
    for index, request_jobs in jobs.items():
        request_size = request_bytes(requests[index].jobspecs)
        if not groups or len(groups[-1][0]) + len(request_jobs) > MAX_JOBS_PER_REQUEST or \
                size + request_size > limits.max_request_bytes:
            groups.append(([], []))
            size = 0
        groups[-1][0].extend(request_jobs)
        groups[-1][1].append(index)
        size += request_size
    return [Entry(identity.sealed(seal_key, messages.SubmitJobs(jobs=jobs)), members) for jobs, members in groups]


def send(tools: WorkerTools, submission: Submission, pipe=None) -> None:
    """Write the submission's inbox entries: into `pipe` (a transaction the caller executes), or
    at once; then, with JOBJOURNAL_SUBMIT_ON_DISK_S, each request of an entry Redis does not
    confirm on disk gets the NotOnDisk error reply."""
    on_disk_s = tools.settings.submit_on_disk_s
    for entry in submission.entries:
        if pipe is not None or not on_disk_s:
            inbox.send(tools.store if pipe is None else pipe, entry.message)
            continue
        try:
            inbox.send_on_disk(tools.store, entry.message, on_disk_s, what=ENTRY)
        except inbox.NotOnDisk as err:
            for index in entry.requests:
                submission.replies[index] = {"error": _not_on_disk(err, submission.replies[index]["ids"])}


def sent_with_results(tools: WorkerTools, queues) -> bool:
    """Whether a worker on `queues` (rq's Redis) writes the inbox entries in the transaction that
    writes the tasks' results (`send` with its pipe): the store is that server, and no on-disk
    confirmation (a WAITAOF after the entries) is asked."""
    return tools.store is queues and not tools.settings.submit_on_disk_s


ENTRY = "the inbox entry"


def _not_on_disk(err: inbox.NotOnDisk, ids: list[int]) -> str:
    """NotOnDisk's message (it begins with ENTRY), naming one request's jobs."""
    return f"jobs {_id_range(ids)}" + str(err).removeprefix(ENTRY)


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
    specs = valid_jobspecs(redis, jobspecs, userid, limits)
    jobs = with_ids(specs, userid, ids.generator() if ids else generator_from_redis(redis))
    request = identity.sealed(seal_key or identity.ingest_key(redis), messages.SubmitJobs(jobs=jobs))
    if limits.on_disk_s:
        inbox.send_on_disk(redis, request, limits.on_disk_s, what=f"jobs {_id_range([job.id for job in jobs])}")
    else:
        inbox.send(redis, request)
    return [job.id for job in jobs]


def valid_jobspecs(redis, jobspecs: list[bytes | str], userid: int, limits: IngestLimits) -> list[Jobspec]:
    """The request's jobspecs, validated and charged against the rate limit (nothing written but
    the charge); InvalidJobspec or RateLimited."""
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
    return specs


def with_ids(specs: list[Jobspec], userid: int, generator: IdGenerator) -> list[messages.NewJob]:
    now = time.time()
    return [messages.NewJob(id=generator.next_id(), userid=userid, t_submit=now, jobspec=spec) for spec in specs]


def _id_range(ids: list[int]) -> str:
    first, last = f58(ids[0]), f58(ids[-1])
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


def request_bytes(jobspecs: list[bytes | str]) -> int:
    """The bytes of a request's jobspecs as the inbox will hold them (UTF-8: a character may be 4)."""
    return sum(len(document.encode() if isinstance(document, str) else document) for document in jobspecs)


def check_request_size(jobspecs: list[bytes | str], limit: int) -> None:
    """InvalidJobspec if the jobspecs of one request hold more than `limit` bytes in all."""
    total = request_bytes(jobspecs)
    if total > limit:
        raise InvalidJobspec(
            f"the request holds {total:,} bytes of jobspecs ({len(jobspecs)} of {total // len(jobspecs):,} bytes); "
            f"the limit is {limit:,} (JOBJOURNAL_MAX_REQUEST_BYTES): submit fewer copies at a time, or trim the "
            "environment (--env=-* ...)"
        )
