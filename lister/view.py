"""Writing the view: what each job contributes (document, sorted sets, counters), as changes.

A job's contributions (its JSON document, sorted-set memberships and counters) are derived
from its JobView alone, so an update is "take the old contributions away, add the new
ones": the same code serves live batches (`Changes`, applied atomically by
apply_batch.lua) and bulk builds (`BulkWriter`, pipelined).
"""

from __future__ import annotations

from collections import defaultdict

from redis.exceptions import ResponseError

from jobjournal.common import keys
from jobjournal.common.formats import VIEW_VERSION
from jobjournal.common.keys import INDEXED_RESULTS, VIEW_LISTS, Partition
from jobjournal.common.packed import Pending, pack
from jobjournal.common.scripts import Script, load_script, mapped_error, run_script, script_call
from jobjournal.lister.model import JobView, member

APPLY_BATCH = Script("jobjournal.lister", "apply_batch")
WRITE_CHUNK = Script("jobjournal.lister", "write_chunk")
DELETE_PAGE = 1000
USERS_SET_SINCE = 4
"""The view format that added a generation's users set."""


def memberships(part: Partition, generation: int, view: JobView) -> dict[str, float]:
    """Sorted-set key to score, for every sorted set the job belongs to."""
    name, score = view.list_name, view.list_score
    out = {part.view_list(generation, name): score, part.view_user_list(generation, view.userid, name): score}
    if view.result in INDEXED_RESULTS:
        out[part.view_result_list(generation, view.result)] = score
    return out


def counters(view: JobView) -> list[str]:
    """The stats counters a job adds one to."""
    out = [keys.stat_state(view.state), keys.stat_state(view.state, view.queue)]
    if view.result:
        out += [keys.stat_result(view.result), keys.stat_result(view.result, view.queue)]
    return out


class Operations:
    """Redis writes as a script's arguments (apply_batch.lua, write_chunk.lua): each names its key by
    index into KEYS, after the script's FIXED_KEYS own."""

    FIXED_KEYS = 2

    def __init__(self):
        self.keys: dict[str, int] = {}
        self.args: list = []

    def add(self, command: str, key: str, *args) -> None:
        index = self.keys.setdefault(key, len(self.keys) + self.FIXED_KEYS + 1)
        self.args += [command, index, len(args), *args]

    def commands(self) -> list[bytes]:
        """The same writes as plain commands, packed (for a writer that holds no lease)."""
        names = {index: key for key, index in self.keys.items()}
        args, commands, i = self.args, [], 0
        while i < len(args):
            count = args[i + 2]
            commands.append(pack((args[i], names[args[i + 1]], *args[i + 3 : i + 3 + count])))
            i += 3 + count
        return commands


class Changes:
    """One batch of view changes, to apply atomically with the new journal cursor."""

    def __init__(self, part: Partition, generation: int):
        self.part = part
        self.generation = generation
        self._ops = Operations()
        self._counts: dict[str, int] = defaultdict(int)
        self._users: set[int] = set()

    def count(self, counter: str, delta: int = 1) -> None:
        self._counts[counter] += delta

    def update(self, old: JobView | None, new: JobView | None) -> None:
        """Replace a job's old contributions (None: it had none) by its new ones (None: remove)."""
        g, part = self.generation, self.part
        job_id = (new or old).id
        if new is None:
            self._op("HDEL", part.view_jobs(g), job_id)
        elif new != old:
            self._op("HSET", part.view_jobs(g), job_id, new.to_json())
        before = memberships(part, g, old) if old else {}
        after = memberships(part, g, new) if new else {}
        if old is None and new is not None and new.userid not in self._users:  # a job's userid never changes
            self._users.add(new.userid)
            self._op("SADD", part.view_users(g), new.userid)
        for key in before.keys() - after.keys():
            self._op("ZREM", key, member(job_id))
        for key, score in after.items():
            if before.get(key) != score:
                self._op("ZADD", key, repr(score), member(job_id))
        for counter in counters(old) if old else ():
            self._counts[counter] -= 1
        for counter in counters(new) if new else ():
            self._counts[counter] += 1

    def apply(self, redis, lease_token: str, expected_seq: int, new_seq: int, cursor: str) -> None:
        """Apply the batch with lua/apply_batch.lua; LeaseLost if another worker holds the lease,
        StaleView if the view is not at `expected_seq`."""
        stats = self.part.view_stats(self.generation)
        for counter, delta in self._counts.items():
            if delta:
                self._op("HINCRBY", stats, counter, delta)
        fixed = [self.part.view_meta(self.generation), self.part.lister_lease()]
        args = [lease_token, expected_seq, new_seq, cursor, *self._ops.args]
        run_script(redis, APPLY_BATCH, fixed + list(self._ops.keys), args)

    def _op(self, command: str, key: str, *args) -> None:
        self._ops.add(command, key, *args)


class BulkWriter:
    """Writes a whole generation fast: every CHUNK jobs, their documents (one HSET) and their
    sorted-set members (one ZADD per set), packed by hand and written one chunk behind (Redis
    writes a chunk while the next is derived); the stats and the meta at the end. Close it
    (or use it as a context manager): closing waits for the writes sent.

    With `lease_token` (a lister worker's, or its helpers'), each chunk is one write_chunk.lua call:
    written only while that token holds the partition's lister lease and `generation` is the one
    being built, and counted in the build's progress; a chunk refused raises LeaseLost. Without
    (the naive oracle, tests), plain commands."""

    CHUNK = 500

    def __init__(self, redis, part: Partition, generation: int, lease_token: str | None = None):
        self.redis = redis
        self.part = part
        self.generation = generation
        self.lease_token = lease_token
        self._chunk_start = 0
        """`jobs` when the chunk being gathered began."""
        self.jobs = 0
        self.counted_in = 0
        """Of `jobs`, those other processes wrote (`count_in`)."""
        self.skipped = 0
        """Unreadable reply entries or jobs set aside instead of written (here or elsewhere)."""
        self._pending = Pending(redis, part.view_jobs(generation))
        if lease_token is not None:
            load_script(redis, WRITE_CHUNK, part.view_jobs(generation))
        self._docs: list = []
        self._lists: dict[str, list] = defaultdict(list)
        self._counts: dict[tuple, int] = defaultdict(int)
        self._keys: dict[tuple, tuple[str, ...]] = {}
        self._users: set[int] = set()
        """Users of the jobs in this chunk; each chunk names its own (it may land after a delete)."""

    def add(self, view: JobView) -> None:
        job_member = member(view.id)
        self._docs += (view.id, view.to_json())
        score = repr(view.list_score)  # once for all its sets (the wire format's own form)
        for key in self._sets_of(view):
            pairs = self._lists[key]
            pairs.append(score)
            pairs.append(job_member)
        self._counts[(view.state, view.queue, view.result)] += 1
        self._users.add(view.userid)
        self.jobs += 1
        if len(self._docs) >= 2 * self.CHUNK:
            self._write()

    def _sets_of(self, view: JobView) -> tuple[str, ...]:
        """The sorted sets a job belongs to (as `memberships`), remembered per kind of job."""
        kind = (view.state, view.userid, view.result)
        found = self._keys.get(kind)
        if found is None:
            found = self._keys[kind] = tuple(memberships(self.part, self.generation, view))
        return found

    def _write(self) -> None:
        ops = Operations()
        if self._users:
            ops.add("SADD", self.part.view_users(self.generation), *self._users)
        if self._docs:
            ops.add("HSET", self.part.view_jobs(self.generation), *self._docs)
        for key, pairs in self._lists.items():
            ops.add("ZADD", key, *pairs)
        self._users, self._docs, self._lists = set(), [], defaultdict(list)
        self._replies()  # the chunk before, written meanwhile
        if ops.args:
            self._pending.send(self._packed(ops, self.jobs - self._chunk_start))
        self._chunk_start = self.jobs

    def _packed(self, ops: Operations, jobs: int) -> list[bytes]:
        if self.lease_token is None:
            return ops.commands()
        fixed = [self.part.lister_lease(), self.part.view_building()]
        return [script_call(WRITE_CHUNK, fixed + list(ops.keys), [self.lease_token, self.generation, jobs, *ops.args])]

    def _replies(self) -> None:
        try:
            self._pending.replies()
        except ResponseError as err:
            raise mapped_error(err) from err

    def flush(self) -> None:
        """Write what is left; wait until Redis has it all."""
        self._write()
        self._replies()

    def tally(self) -> list[tuple[str, str, str | None, int]]:
        """How many jobs of each (state, queue, result) this writer wrote."""
        return [(*kind, count) for kind, count in self._counts.items()]

    def count_in(self, jobs: int, tally: list[tuple[str, str, str | None, int]], skipped: int = 0) -> None:
        """Jobs another process wrote into this generation (its `tally`), for the stats."""
        self.jobs += jobs
        self.counted_in += jobs
        self.skipped += skipped
        for state, queue, result, count in tally:
            self._counts[(state, queue, result)] += count

    def finish(self, cursor: str, seq: int, purged: int = 0) -> None:
        """Write what is left, then the stats and the meta."""
        self.flush()
        counts: dict[str, int] = defaultdict(int, {keys.STAT_PURGED: purged})
        for (state, queue, result), count in self._counts.items():
            for counter in counters(JobView(id=0, state=state, queue=queue, result=result)):
                counts[counter] += count
        meta = {"version": VIEW_VERSION, "cursor": cursor, "seq": seq, "built_with_jobs": self.jobs}
        ops = Operations()
        ops.add("HSET", self.part.view_stats(self.generation), *_flat(counts))
        ops.add("HSET", self.part.view_meta(self.generation), *_flat(meta))
        self._pending.send(self._packed(ops, 0))
        self._replies()

    def close(self) -> None:
        """Wait for the writes sent (an abandoned build is deleted only after them)."""
        try:
            self._pending.replies(raise_errors=False)  # a refused chunk was raised, or does not matter now
        finally:
            self._pending.close()

    def __enter__(self) -> BulkWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _flat(mapping: dict) -> list:
    return [item for pair in mapping.items() for item in pair]


def generation_keys(part: Partition, generation: int, userids) -> list[str]:
    """Every key a generation can have, given the users its users set names: each user's sets
    first, and last the fixed names with the users set itself (so a delete cut short can be
    finished: the set stays until everything it names is gone)."""
    g = generation
    names = [part.view_user_list(g, userid, name) for userid in userids for name in VIEW_LISTS]
    names += [part.view_list(g, name) for name in VIEW_LISTS]
    names += [part.view_result_list(g, result) for result in sorted(INDEXED_RESULTS)]
    return names + [part.view_meta(g), part.view_jobs(g), part.view_stats(g), part.view_users(g)]


def delete_generation(redis, part: Partition, generation: int, renew=lambda: None) -> int:
    """Remove every key of a generation; returns how many. Its users set says which keys it has.
    A generation built before view format 4 has none, and is found with SCAN instead, which walks
    the whole keyspace (2M keys at 1M jobs). `renew` (the caller's lease) is called between pages."""
    userids = [int(userid) for userid in redis.smembers(part.view_users(generation))]
    if not userids and _built_without_users_set(redis, part, generation):
        return _delete_scanning(redis, part, generation, renew)
    names, removed = generation_keys(part, generation, userids), 0
    for start in range(0, len(names), DELETE_PAGE):
        removed += redis.unlink(*names[start : start + DELETE_PAGE])
        renew()
    return removed


def _built_without_users_set(redis, part: Partition, generation: int) -> bool:
    """Asked when a generation has no users set: true if it has jobs (since format 4, a chunk
    names its users with them) or its meta says an older format (its jobs already deleted)."""
    with redis.pipeline(transaction=False) as pipe:
        pipe.exists(part.view_jobs(generation)).hget(part.view_meta(generation), "version")
        jobs, version = pipe.execute()
    return bool(jobs) or (version is not None and int(version) < USERS_SET_SINCE)


def _delete_scanning(redis, part: Partition, generation: int, renew) -> int:
    cursor, removed = 0, 0
    while True:
        cursor, found = redis.scan(cursor, match=part.view_pattern(generation), count=DELETE_PAGE)
        if found:
            removed += redis.unlink(*found)
        renew()
        if cursor == 0:
            return removed
