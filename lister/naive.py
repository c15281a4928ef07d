"""The naive rebuild: walk every job's eventlog stream (what Flux's lister did at start).

It uses the same derivation (`view_from_events`) and the same bulk writer as the real
rebuild, so it is both the test oracle for "the view equals one rebuilt from scratch" and
the baseline the benchmark compares the full-journal rebuild with.
"""

from __future__ import annotations

from jobjournal.common import events as ev
from jobjournal.common.journal import journal_head
from jobjournal.common.keys import Partition
from jobjournal.common.packed import is_cluster
from jobjournal.lister.model import view_from_events
from jobjournal.lister.view import BulkWriter

CHUNK = 1000


def build_naive(redis, part: Partition, generation: int) -> int:
    """Build a partition's `generation` by reading every job's eventlog; returns the number of jobs.

    Meant for an idle system: jobs changing meanwhile may be caught half-way.
    """
    cursor, seq = journal_head(redis, part)
    purged = int(redis.hget(part.journal_head(), "purged") or 0)
    job_ids = [int(j) for j in redis.zrange(part.inactive_jobs(), 0, -1)]
    job_ids += sorted(int(j) for j in redis.smembers(part.active_jobs()))
    with BulkWriter(redis, part, generation) as writer:
        for start in range(0, len(job_ids), CHUNK):
            chunk = job_ids[start : start + CHUNK]
            pipe = redis.pipeline(transaction=False)
            for job_id in chunk:
                pipe.xrange(part.job_eventlog(job_id))
            for job_id, entries in zip(chunk, pipe.execute(), strict=True):
                events = [ev.decode_entry(fields) for _, fields in entries]
                jobspec, r = ev.eventlog_attachments(fields for _, fields in entries)
                writer.add(view_from_events(job_id, events, jobspec, r))
        writer.finish(cursor, seq, purged)
    return writer.jobs


def dump_view(redis, part: Partition, generation: int) -> dict:
    """A partition's generation's whole content, with generation-free names, for comparing views."""
    prefix = part.view_prefix(generation)
    dump: dict = {"jobs": {}, "lists": {}}
    for key in _keys_of(redis, part, generation):
        name = key.decode()[len(prefix) :]
        if name == "jobs":
            dump["jobs"] = redis.hgetall(key)
        elif name == "stats":
            dump["stats"] = {k: int(v) for k, v in redis.hgetall(key).items() if int(v)}
        elif name not in ("meta", "users"):
            dump["lists"][name] = redis.zrange(key, 0, -1, withscores=True)
    # the users set may name more users than have lists (all of a user's jobs purged), never fewer
    listed = {int(name.split(":")[1]) for name in dump["lists"] if name.startswith("user:")}
    dump["users_not_named"] = listed - {int(userid) for userid in redis.smembers(part.view_users(generation))}
    return dump


def _keys_of(redis, part: Partition, generation: int) -> list[bytes]:
    """Every key of a generation, found by SCAN (on a cluster, on the node of its slot)."""
    pattern = part.view_pattern(generation)
    if is_cluster(redis):
        node = redis.get_node_from_key(part.view_meta(generation))
        return list(redis.get_redis_connection(node).scan_iter(match=pattern, count=1000))
    return list(redis.scan_iter(match=pattern, count=1000))

