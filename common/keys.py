"""Every Redis key name jobjournal uses, and nowhere else.

Per-job keys carry the job id as a hash tag (`{id}`) so that one job's keys share a
Redis Cluster slot. Lua scripts receive every key through KEYS, built here.
"""

import re

from jobjournal.common.states import ACTIVE, PENDING, RUNNING, State

PREFIX = "jj"

# rq queue names (rq builds its own key names from these)
INGEST_QUEUE = "jj-ingest"
EXEC_QUEUE = "jj-exec"


def job_eventlog(job_id: int) -> str:
    """Stream: the job's eventlog, one entry per event (name, timestamp, context)."""
    return f"{PREFIX}:job:{{{job_id}}}:eventlog"


def job_environment(job_id: int) -> str:
    """String: the job's environment as JSON (private; only when it is not empty).

    The redacted jobspec and R live in the eventlog itself, on the submit and alloc entries.
    """
    return f"{PREFIX}:job:{{{job_id}}}:env"


def journal() -> str:
    """Stream: every posted event of every job, plus purge entries."""
    return f"{PREFIX}:journal"


def journal_head() -> str:
    """Hash: `seq` and `last_id` of the newest journal entry (gap detection, snapshots)."""
    return f"{PREFIX}:journal:head"


def journal_consumers() -> str:
    """Hash: consumer name -> "<cursor> <unix time>": how far each registered consumer has read.

    The manager trims the journal only behind the slowest fresh registration."""
    return f"{PREFIX}:journal:consumers"


def journal_reply(consumer: str) -> str:
    """Stream: a full-journal reply (backlog entries, then a sentinel) for one consumer."""
    return f"{PREFIX}:journal:reply:{consumer}"


def journal_reply_claims(consumer: str) -> str:
    """String (counter): reply entries handed out to the processes that share a rebuild (INCR)."""
    return f"{PREFIX}:journal:reply:{consumer}:claims"


def active_jobs() -> str:
    """Set: ids of jobs that are not inactive."""
    return f"{PREFIX}:jobs:active"


def inactive_jobs() -> str:
    """Sorted set: ids of inactive jobs, scored by t_inactive."""
    return f"{PREFIX}:jobs:inactive"


def manager_inbox() -> str:
    """Stream: requests to the manager (submissions, cancels, journal requests, ...)."""
    return f"{PREFIX}:manager:inbox"


def manager_inbox_cursor() -> str:
    """String: id of the last inbox entry whose effects are posted."""
    return f"{PREFIX}:manager:inbox:cursor"


def manager_lease() -> str:
    """String with TTL: the token of the active manager."""
    return f"{PREFIX}:manager:lease"


def dead_letters() -> str:
    """Stream: entries set aside because they could not be handled, with the reason."""
    return f"{PREFIX}:deadletter"


def reply(request_id: str) -> str:
    """List: the manager's answer to one request."""
    return f"{PREFIX}:reply:{request_id}"


def id_generator() -> str:
    """String counter: hands each job id generator its own generator number."""
    return f"{PREFIX}:ids:generator"


def submit_rate(userid: int, second: int) -> str:
    """String counter with TTL: jobs a user submitted in one second (the rate limit)."""
    return f"{PREFIX}:rate:{{{userid}}}:{second}"


def exec_kill(job_id: int) -> str:
    """String: present when the rq exec task of a job must kill it."""
    return f"{PREFIX}:exec:{{{job_id}}}:kill"


def exec_heartbeat(job_id: int) -> str:
    """String with TTL: refreshed while an rq exec task runs the job's command."""
    return f"{PREFIX}:exec:{{{job_id}}}:alive"


def exec_rq_job(job_id: int) -> str:
    """The rq job id of a job's exec task (not a Redis key of ours: rq's job id)."""
    return f"jj-exec-{job_id}"


# -- the lister's view. Every key of one generation shares the hash tag {g<gen>}, so one
# atomic batch can touch any of them (on Redis Cluster, a generation lives on one shard).

VIEW_LISTS = ("pending", "running", "inactive")
"""The view's lists (view_list, view_user_list), in the order a query walks them."""
LIST_STATES = {"pending": PENDING | State.NEW, "running": RUNNING, "inactive": State.INACTIVE}
"""The states each list holds."""
LIST_OF_STATE = {state.name: name for name, mask in LIST_STATES.items() for state in State if state & mask}
"""State name -> the list a job in it is on."""
STATE_GROUPS = {**LIST_STATES, "active": ACTIVE}
"""The group names a query or constraint accepts for several states."""
INDEXED_RESULTS = frozenset({"FAILED", "CANCELED", "TIMEOUT"})
"""Results with a sorted set of their own (view_result_list); COMPLETED, most jobs, is found on
the inactive list."""
STAT_PURGED = "purged"
"""The view_stats field counting purged jobs."""


def stat_state(state: str, queue: str | None = None) -> str:
    """The view_stats field counting jobs in `state` (of one queue, if given)."""
    return f"state:{state}" if queue is None else f"queue:{queue}:state:{state}"


def stat_result(result: str, queue: str | None = None) -> str:
    """The view_stats field counting inactive jobs with `result` (of one queue, if given)."""
    return f"result:{result}" if queue is None else f"queue:{queue}:result:{result}"


def stat_queue(field: str) -> str | None:
    """The queue a view_stats field counts for; None for a field over all queues."""
    match = _QUEUE_FIELD.match(field)
    return match.group(1) if match else None


_QUEUE_FIELD = re.compile(r"^queue:(.*):(?:state|result):[A-Z]+$")


def view_current() -> str:
    """String: the generation number readers use; absent until a first view is complete."""
    return f"{PREFIX}:view:current"


def view_generation_counter() -> str:
    """String counter: hands out generation numbers."""
    return f"{PREFIX}:view:generations"


def view_building() -> str:
    """Hash: the generation being built (`generation`, `jobs`, `started`), while there is one."""
    return f"{PREFIX}:view:building"


def lister_lease() -> str:
    """String with TTL: the token of the lister worker that applies the journal."""
    return f"{PREFIX}:lister:lease"


def view_meta(generation: int) -> str:
    """Hash: format version, journal cursor and seq of one generation."""
    return f"{PREFIX}:view:{{g{generation}}}:meta"


def view_jobs(generation: int) -> str:
    """Hash: job id (decimal) -> the job's derived attributes, as JSON (attributes at their
    default left out). One hash rather than a key per job: ~50 bytes less a job, and an old
    generation goes with one UNLINK."""
    return f"{PREFIX}:view:{{g{generation}}}:jobs"


def view_list(generation: int, name: str) -> str:
    """Sorted set: 'pending', 'running' or 'inactive' jobs, members are 20-digit ids."""
    return f"{PREFIX}:view:{{g{generation}}}:{name}"


def view_user_list(generation: int, userid: int, name: str) -> str:
    """Sorted set: one user's 'pending', 'running' or 'inactive' jobs."""
    return f"{PREFIX}:view:{{g{generation}}}:user:{userid}:{name}"


def view_result_list(generation: int, result: str) -> str:
    """Sorted set: inactive jobs with one result (FAILED, CANCELED, TIMEOUT), by t_inactive."""
    return f"{PREFIX}:view:{{g{generation}}}:result:{result}"


def view_users(generation: int) -> str:
    """Set: at least every userid with sorted sets of its own in one generation (to find all its keys)."""
    return f"{PREFIX}:view:{{g{generation}}}:users"


def view_stats(generation: int) -> str:
    """Hash: counters per state, result and queue."""
    return f"{PREFIX}:view:{{g{generation}}}:stats"


def view_pattern(generation: int) -> str:
    """SCAN pattern matching every key of one generation (to delete one built before view
    format 4, which has no users set, and to compare views in tests)."""
    return f"{PREFIX}:view:{{g{generation}}}:*"
