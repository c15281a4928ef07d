"""What the system is doing, for `jobjournal status`, `jobjournal resources` and the web view's
summary: who leads (manager, listers and their partitions), how far the view is behind, the inbox,
rq's queues and workers, the executors, the leader's resources, each journal consumer's lag, and
jobs finished per interval over the last minutes."""

from __future__ import annotations

from jobjournal.common import keys, tasks
from jobjournal.common.consumers import registrations
from jobjournal.common.journal import journal_heads, stream_order
from jobjournal.common.layout import Layout, read_layout
from jobjournal.common.packed import reads
from jobjournal.common.resources import encode_idset, hostlist, idset_ranges
from jobjournal.common.settings import Settings
from jobjournal.lister.freshness import freshness


def system_status(redis, queues, settings: Settings, now: float) -> dict:
    """Who is up and who leads (`jobjournal status --json`)."""
    layout = read_layout(redis)
    [manager, inbox_length] = reads(redis, [("GET", keys.manager_lease()), ("XLEN", keys.manager_inbox())])
    members = redis.zrangebyscore(keys.lister_members(), now - settings.lease_ttl, "+inf")
    holders = reads(redis, [("GET", part.lister_lease()) for part in layout.partitions])
    by_holder: dict[str, list[int]] = {process_of(member): [] for member in members}
    for part, holder in zip(layout.partitions, holders, strict=True):
        if holder is not None:  # a worker's leases and its member name share its host:pid
            by_holder.setdefault(process_of(holder), []).append(part.index)
    health = freshness(redis, layout, now, settings.lease_ttl)
    return {
        "manager": manager.decode() if manager else None,
        "listers": {name: encode_idset(parts) for name, parts in sorted(by_holder.items())},
        "view": {"fatal": health.fatal(), "warnings": health.warnings(), "behind_events": health.behind_events,
                 "behind_s": round(health.behind_s, 3)},
        "inbox": inbox_length,
        **_rq(queues),
    }


def leases_held_on(redis, role: str, host: str) -> tuple[list[str], list[str]]:
    """The holders of `role`'s leases ("manager": the manager lease; "lister": every partition's
    lister lease) that run on `host`, and those that run elsewhere (a lease token starts with
    its holder's host name, common/lease.py)."""
    lease_keys = [keys.manager_lease()] if role == "manager" else \
        [part.lister_lease() for part in read_layout(redis).partitions]
    holders = [holder.decode() for holder in reads(redis, [("GET", key) for key in lease_keys]) if holder]
    here = [holder for holder in holders if holder.split(":", 1)[0] == host]
    return here, [holder for holder in holders if holder not in here]


def process_of(token: bytes | str) -> str:
    """host:pid of a lease token or worker name (host:pid:random, common/lease.py)."""
    return (token.decode() if isinstance(token, bytes) else token).rsplit(":", 1)[0]


def _rq(queues) -> dict:
    from rq import Worker  # rq costs ~30 ms to import: only for the commands that need it

    from jobjournal.manager import exec_dispatch

    workers = {worker.name: worker.get_state() for worker in Worker.all(connection=queues)}
    executors = exec_dispatch.live_executors(queues)
    return {
        "queues": {"ingest": tasks.ingest_queue(queues).count, "exec": queues.xlen(keys.exec_dispatch())},
        "workers": dict(sorted(workers.items())),
        "executors": {name: {"slots": info.slots, "running": info.running}
                      for name, info in sorted(executors.items())},
    }


def published_resources(redis) -> dict | None:
    """The leading manager's pool as it published it: {"rows": free and allocated, "exec_backend",
    "stale": published by a manager that no longer leads}; None if no manager published one."""
    pool = redis.hgetall(keys.manager_resources())
    if not pool:
        return None
    stale = pool[b"token"] != redis.get(keys.manager_lease())
    return {"rows": resource_rows(pool), "exec_backend": pool[b"exec_backend"].decode(), "stale": stale}


def resource_rows(pool: dict) -> list[dict]:
    nodes, per_node = int(pool[b"nodes"]), int(pool[b"cores_per_node"])
    whole = [rank for low, high in idset_ranges(pool[b"free"].decode()) for rank in range(low, high + 1)]
    partial = {int(rank): int(cores) for rank, _, cores in
               (item.partition(":") for item in pool[b"partial"].decode().split(",") if item)}
    free_ranks = sorted([*whole, *partial])
    free_cores = len(whole) * per_node + sum(partial.values())
    used_ranks = sorted(set(range(nodes)) - set(whole))
    return [
        {"state": "free", "nnodes": len(free_ranks), "ncores": free_cores, "nodelist": _names(free_ranks)},
        {"state": "allocated", "nnodes": len(used_ranks), "ncores": nodes * per_node - free_cores,
         "nodelist": _names(used_ranks)},
    ]


def _names(ranks: list[int]) -> str:
    return hostlist([f"node{rank}" for rank in ranks]) if ranks else ""


def consumer_lag(redis, layout: Layout) -> list[dict]:
    """Each registered journal consumer of each partition: how far behind the journal's head it is
    (seconds between the entry ids; entries, from the seq of the entry at its cursor: None once
    that entry is trimmed), and when it last said so."""
    out = []
    heads = journal_heads(redis, layout)
    for part in layout.partitions:
        head, head_seq = heads[part]
        for consumer, (cursor, stamp) in sorted(registrations(redis, part).items()):
            behind_ms = max(0, stream_order(head)[0] - stream_order(cursor)[0]) if cursor else 0
            at = _seq_at(redis, part, cursor)
            out.append({"partition": part.index, "consumer": consumer, "cursor": cursor,
                        "behind_s": behind_ms / 1000, "behind_entries": None if at is None else head_seq - at,
                        "reported": stamp})
    return out


def _seq_at(redis, part, cursor: str) -> int | None:
    """The seq of the journal entry at `cursor` (0 for the journal's start), None if it is gone."""
    if not cursor or cursor == "0-0":
        return 0
    found = redis.xrange(part.journal(), cursor, cursor, count=1)
    return int(found[0][1].get(b"seq", 0)) if found else None


def finished_per_interval(redis, layout: Layout, now: float, minutes: int = 5, step_s: int = 10) -> list[dict]:
    """Jobs that became inactive in each `step_s` interval of the last `minutes`, oldest first (a
    ZCOUNT per interval and partition on the inactive sets, scored by that time: no scan)."""
    edges = [now - minutes * 60 + step * step_s for step in range(minutes * 60 // step_s + 1)]
    commands = [("ZCOUNT", part.inactive_jobs(), f"({low}", high)
                for low, high in zip(edges, edges[1:], strict=False) for part in layout.partitions]
    counts = reads(redis, commands)
    size = layout.size
    return [{"until": high, "jobs": sum(counts[index * size:(index + 1) * size])}
            for index, high in enumerate(edges[1:])]


