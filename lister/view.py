"""Writing the view: what each job contributes (document, sorted sets, counters), as changes.

A job's contributions (its JSON document, sorted-set memberships and counters) are derived
from its JobView alone, so an update is "take the old contributions away, add the new
ones": the same code serves live batches (`Changes`, applied atomically by
apply_batch.lua) and bulk builds (`BulkWriter`, pipelined).
"""

from __future__ import annotations

from collections import defaultdict
from importlib import resources

import redis as redis_lib

from common import keys
from lister.errors import LeaseLost, StaleView
from lister.model import VIEW_VERSION, JobView, member

LISTS = ("pending", "running", "inactive")
INDEXED_RESULTS = frozenset({"FAILED", "CANCELED", "TIMEOUT"})
"""Results with a sorted set of their own; COMPLETED, most jobs, is found on the inactive list."""


def memberships(generation: int, view: JobView) -> dict[str, float]:
    """Sorted-set key to score, for every sorted set the job belongs to."""
    name, score = view.list_name, view.list_score
    out = {keys.view_list(generation, name): score, keys.view_user_list(generation, view.userid, name): score}
    if view.result in INDEXED_RESULTS:
        out[keys.view_result_list(generation, view.result)] = score
    return out


def counters(view: JobView) -> list[str]:
    """The stats counters a job adds one to."""
    out = [f"state:{view.state}", f"queue:{view.queue}:state:{view.state}"]
    if view.result:
        out += [f"result:{view.result}", f"queue:{view.queue}:result:{view.result}"]
    return out


class Changes:
    """One batch of view changes, to apply atomically with the new journal cursor."""

    def __init__(self, generation: int):
        self.generation = generation
        self._keys: dict[str, int] = {}
        self._ops: list = []
        self._counts: dict[str, int] = defaultdict(int)

    def count(self, counter: str, delta: int = 1) -> None:
        self._counts[counter] += delta

    def update(self, old: JobView | None, new: JobView | None) -> None:
        """Replace a job's old contributions (None: it had none) by its new ones (None: remove)."""
        g = self.generation
        job_id = (new or old).id
        if new is None:
            self._op("DEL", keys.view_job(g, job_id))
        elif new != old:
            self._op("SET", keys.view_job(g, job_id), new.to_json())
        before = memberships(g, old) if old else {}
        after = memberships(g, new) if new else {}
        for key in before.keys() - after.keys():
            self._op("ZREM", key, member(job_id))
        for key, score in after.items():
            if before.get(key) != score:
                self._op("ZADD", key, repr(score), member(job_id))
        for counter in counters(old) if old else ():
            self._counts[counter] -= 1
        for counter in counters(new) if new else ():
            self._counts[counter] += 1

    def apply(self, redis, script, lease_token: str, expected_seq: int, new_seq: int, cursor: str) -> None:
        stats = keys.view_stats(self.generation)
        for counter, delta in self._counts.items():
            if delta:
                self._op("HINCRBY", stats, counter, delta)
        fixed = [keys.view_meta(self.generation), keys.lister_lease()]
        args = [lease_token, expected_seq, new_seq, cursor, *self._ops]
        try:
            script(keys=fixed + list(self._keys), args=args)
        except redis_lib.ResponseError as err:
            text = str(err)
            if text.startswith("NOTLEADER"):
                raise LeaseLost(text) from err
            if text.startswith("STALE"):
                raise StaleView(text) from err
            raise

    def _op(self, command: str, key: str, *args) -> None:
        index = self._keys.setdefault(key, len(self._keys) + 3)
        self._ops += [command, index, len(args), *args]


class BulkWriter:
    """Writes a whole generation fast: job documents as they come (MSET in chunks), then the
    sorted sets and stats once, at the end."""

    CHUNK = 2000

    def __init__(self, redis, generation: int):
        self.redis = redis
        self.generation = generation
        self.jobs = 0
        self._pipe = redis.pipeline(transaction=False)
        self._docs: dict[str, bytes] = {}
        self._lists: dict[str, list] = defaultdict(list)
        self._counts: dict[tuple, int] = defaultdict(int)

    def add(self, view: JobView) -> None:
        job_member = member(view.id)
        self._docs[keys.view_job(self.generation, view.id)] = view.to_json()
        for key, score in memberships(self.generation, view).items():
            pairs = self._lists[key]
            pairs.append(score)
            pairs.append(job_member)
        self._counts[(view.state, view.queue, view.result)] += 1
        self.jobs += 1
        if len(self._docs) >= self.CHUNK:
            self._pipe.mset(self._docs)
            self._pipe.execute()
            self._docs = {}

    def finish(self, cursor: str, seq: int, purged: int = 0, renew=lambda: None) -> None:
        """Write the sorted sets (each ordered once, in big ZADDs), the stats and the meta."""
        g = self.generation
        if self._docs:
            self._pipe.mset(self._docs)
        for key, pairs in self._lists.items():
            for start in range(0, len(pairs), 2 * self.CHUNK):
                self._pipe.execute_command("ZADD", key, *pairs[start : start + 2 * self.CHUNK])
                if start % (20 * self.CHUNK) == 0:
                    self._pipe.execute()
                    renew()
        counts: dict[str, int] = defaultdict(int, purged=purged)
        for (state, queue, result), count in self._counts.items():
            for counter in counters(JobView(id=0, state=state, queue=queue, result=result)):
                counts[counter] += count
        self._pipe.hset(keys.view_stats(g), mapping=counts)
        meta = {"version": VIEW_VERSION, "cursor": cursor, "seq": seq, "built_with_jobs": self.jobs}
        self._pipe.hset(keys.view_meta(g), mapping=meta)
        self._pipe.execute()


def load_script(redis):
    source = resources.files("lister").joinpath("lua", "apply_batch.lua").read_text()
    return redis.register_script(source)


def delete_generation(redis, generation: int) -> int:
    """Remove every key of a generation; returns how many."""
    removed = 0
    batch = []
    for key in redis.scan_iter(match=keys.view_pattern(generation), count=1000):
        batch.append(key)
        if len(batch) >= 1000:
            removed += redis.unlink(*batch)
            batch = []
    if batch:
        removed += redis.unlink(*batch)
    return removed


