"""Every Redis key name jobjournal uses, and nowhere else.

Global keys are module functions. A partition's keys are methods of `Partition`: each carries the
partition's hash tag, so all of them live in one Redis Cluster slot and a script on any of them is
one atomic call (common/layout.py says how a store is partitioned). The legacy partition
(`LEGACY`, tag "") has the names of a store made before partitions, byte for byte: per-job keys
tagged with the job id, view keys with the generation. Lua scripts receive every key through KEYS,
built here.
"""

from __future__ import annotations

import re

import msgspec

from jobjournal.common.states import ACTIVE, PENDING, RUNNING, State

PREFIX = "jj"

# rq queue names (rq builds its own key names from these)
INGEST_QUEUE = "jj-ingest"


# -- global keys (each in a slot of its own; low rate)
def layout() -> str:
    """String (JSON): the store's layout (version, partition tags); absent in a legacy store."""
    return f"{PREFIX}:layout"


def manager_inbox() -> str:
    """Stream: requests to the manager (submissions, cancels, journal requests, ...)."""
    return f"{PREFIX}:manager:inbox"


def manager_lease() -> str:
    """String with TTL: the token of the active manager."""
    return f"{PREFIX}:manager:lease"


def manager_resources() -> str:
    """Hash: the leading manager's resource pool as it is now (`nodes`, `cores_per_node`,
    `exec_backend`, `free`: RFC 22 idset of ranks with every core free, `partial`:
    'rank:free_cores,...' of ranks with some, `updated`, `token`), for `jobjournal resources`."""
    return f"{PREFIX}:manager:resources"


def lister_members() -> str:
    """Sorted set: lister worker name -> the time of its last heartbeat (who divides the partitions)."""
    return f"{PREFIX}:lister:members"


def dead_letters() -> str:
    """Stream: entries set aside because they could not be handled, with the reason."""
    return f"{PREFIX}:deadletter"


def reply(request_id: str, user: str = "") -> str:
    """List: the manager's answer to one request; under the sending ACL user's name when it has one
    (`jj:reply:{alice}:<id>`: a person may read and write its own replies alone)."""
    return f"{PREFIX}:reply:{{{user}}}:{request_id}" if user else f"{PREFIX}:reply:{request_id}"


def id_generator() -> str:
    """String counter: hands each job id generator its own generator number."""
    return f"{PREFIX}:ids:generator"


def submit_rate(userid: int, second: int) -> str:
    """String counter with TTL: jobs a user submitted in one second (the rate limit)."""
    return f"{PREFIX}:rate:{{{userid}}}:{second}"


def users() -> str:
    """Hash: ACL user name -> uid, the people and groups a store with `identity=acl` knows
    (`jobjournal user add`; common/identity.py)."""
    return f"{PREFIX}:users"


def proof(user: str, nonce: str) -> str:
    """String with TTL: the digest of one request ACL user `user` sent, written by that user alone
    (its ACL rules allow `jj:proof:{<user>}:*` only), checked by the manager or an ingest worker."""
    return f"{PREFIX}:proof:{{{user}}}:{nonce}"


def ingest_secret() -> str:
    """String: the key ingest workers seal submissions with (`identity=acl`: the manager takes a
    submission only sealed by one; the worker and manager roles only)."""
    return f"{PREFIX}:ingest:secret"


def exec_dispatch() -> str:
    """Stream (consumer group `EXEC_GROUP`): one entry per job the manager gives the executors to
    run, `id` and `token` only (manager/exec_dispatch.py); on the queue Redis. An executor deletes
    the entry as it takes the job."""
    return f"{PREFIX}:exec:dispatch"


EXEC_GROUP = "executors"


def exec_executors() -> str:
    """Hash: executor name -> JSON {slots, running, beat}: the live executors and their capacity
    (on the queue Redis)."""
    return f"{PREFIX}:exec:executors"


def exec_secret() -> str:
    """String: the manager's secret for dispatch tokens (on the queue Redis; the manager and the
    executors only)."""
    return f"{PREFIX}:exec:secret"


def exec_kill(job_id: int) -> str:
    """String: present when the executor running a job must kill it (on the queue Redis)."""
    return f"{PREFIX}:exec:{{{job_id}}}:kill"


def exec_taken(job_id: int) -> str:
    """String with TTL (7 days): the name of the executor that took the job's dispatch; a second
    dispatch of the job (a replay, or the manager's after a restart) is refused (on the queue Redis)."""
    return f"{PREFIX}:exec:{{{job_id}}}:taken"


def exec_heartbeat(job_id: int) -> str:
    """String with TTL: the executor's name, refreshed while it runs the job's command (on the
    queue Redis)."""
    return f"{PREFIX}:exec:{{{job_id}}}:alive"


class Partition(msgspec.Struct, frozen=True):
    """One partition's keys. `tag` is its hash tag; "" is the legacy partition."""

    index: int
    tag: str = ""

    def _name(self, legacy: str, tagged: str) -> str:
        return f"{PREFIX}:{legacy}" if not self.tag else f"{PREFIX}:{{{self.tag}}}:{tagged}"

    # -- the manager's writes
    def journal(self) -> str:
        """Stream: every posted event of the partition's jobs, plus purge entries."""
        return self._name("journal", "journal")

    def journal_head(self) -> str:
        """Hash: `seq` and `last_id` of the newest journal entry, `purged` (gap detection, snapshots)."""
        return self._name("journal:head", "journal:head")

    def journal_consumers(self) -> str:
        """Hash: consumer name -> "<cursor> <unix time>": how far each registered consumer has read.
        The manager trims the journal only behind the slowest fresh registration."""
        return self._name("journal:consumers", "journal:consumers")

    def journal_reply(self, consumer: str) -> str:
        """Stream: a full-journal reply (backlog entries, then a sentinel) for one consumer."""
        return self._name(f"journal:reply:{consumer}", f"journal:reply:{consumer}")

    def journal_reply_claims(self, consumer: str) -> str:
        """String (counter): reply entries handed out to the processes that share a rebuild (INCR)."""
        return self._name(f"journal:reply:{consumer}:claims", f"journal:reply:{consumer}:claims")

    def active_jobs(self) -> str:
        """Set: ids of the partition's jobs that are not inactive."""
        return self._name("jobs:active", "jobs:active")

    def inactive_jobs(self) -> str:
        """Sorted set: ids of the partition's inactive jobs, scored by t_inactive."""
        return self._name("jobs:inactive", "jobs:inactive")

    def job_eventlog(self, job_id: int) -> str:
        """Stream: the job's eventlog, one entry per event (name, timestamp, context, data)."""
        if not self.tag:
            return f"{PREFIX}:job:{{{job_id}}}:eventlog"
        return f"{PREFIX}:{{{self.tag}}}:job:{job_id}:eventlog"

    def job_environment(self, job_id: int) -> str:
        """String: the job's environment as JSON (private; only when it is not empty). The redacted
        jobspec and R live in the eventlog itself, on the submit and alloc entries."""
        if not self.tag:
            return f"{PREFIX}:job:{{{job_id}}}:env"
        return f"{PREFIX}:{{{self.tag}}}:job:{job_id}:env"

    def job_output(self, job_id: int) -> str:
        """Stream: the job's stdout and stderr as the executor captured them (common/output.py)."""
        if not self.tag:
            return f"{PREFIX}:job:{{{job_id}}}:output"
        return f"{PREFIX}:{{{self.tag}}}:job:{job_id}:output"

    def manager_fence(self) -> str:
        """String with TTL: the token of the manager allowed to write this partition (every writing
        script checks it). The legacy partition's fence is the manager lease itself."""
        return manager_lease() if not self.tag else f"{PREFIX}:{{{self.tag}}}:manager:fence"

    def inbox_cursor(self) -> str:
        """String: id of the last inbox entry whose effects on this partition are posted."""
        return self._name("manager:inbox:cursor", "manager:inbox:cursor")

    # -- the lister's view. Every key of one generation shares one slot: the partition's tag, or
    # in the legacy partition the generation's own tag {g<gen>}.
    def lister_lease(self) -> str:
        """String with TTL: the token of the lister worker that applies this partition's journal."""
        return self._name("lister:lease", "lister:lease")

    def view_current(self) -> str:
        """String: the generation number readers use; absent until a first view is complete."""
        return self._name("view:current", "view:current")

    def view_generation_counter(self) -> str:
        """String counter: hands out generation numbers."""
        return self._name("view:generations", "view:generations")

    def view_building(self) -> str:
        """Hash: the generation being built (`generation`, `jobs`, `started`), while there is one."""
        return self._name("view:building", "view:building")

    def _view(self, generation: int, name: str) -> str:
        if not self.tag:
            return f"{PREFIX}:view:{{g{generation}}}:{name}"
        return f"{PREFIX}:{{{self.tag}}}:view:g{generation}:{name}"

    def view_meta(self, generation: int) -> str:
        """Hash: format version, journal cursor and seq of one generation."""
        return self._view(generation, "meta")

    def view_jobs(self, generation: int) -> str:
        """Hash: job id (decimal) -> the job's derived attributes, as JSON (attributes at their
        default left out). One hash rather than a key per job: ~50 bytes less a job, and an old
        generation goes with one UNLINK."""
        return self._view(generation, "jobs")

    def view_list(self, generation: int, name: str) -> str:
        """Sorted set: 'pending', 'running' or 'inactive' jobs, members are 20-digit ids."""
        return self._view(generation, name)

    def view_user_list(self, generation: int, userid: int, name: str) -> str:
        """Sorted set: one user's 'pending', 'running' or 'inactive' jobs."""
        return self._view(generation, f"user:{userid}:{name}")

    def view_result_list(self, generation: int, result: str) -> str:
        """Sorted set: inactive jobs with one result (FAILED, CANCELED, TIMEOUT), by t_inactive."""
        return self._view(generation, f"result:{result}")

    def view_users(self, generation: int) -> str:
        """Set: at least every userid with sorted sets of its own in one generation (to find all its keys)."""
        return self._view(generation, "users")

    def view_stats(self, generation: int) -> str:
        """Hash: counters per state, result and queue."""
        return self._view(generation, "stats")

    def view_pattern(self, generation: int) -> str:
        """SCAN pattern matching every key of one generation (to delete one built before view
        format 4, which has no users set, and to compare views in tests)."""
        return self._view(generation, "*")

    def view_prefix(self, generation: int) -> str:
        """What every key name of one generation starts with."""
        return self._view(generation, "")


LEGACY = Partition(0)
"""The one partition of a store made before partitions (no layout record): today's key names."""


# -- the view's layout facts, next to its keys
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
