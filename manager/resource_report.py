"""The leading manager's resource pool, published for `jobjournal resources` (and the web view):
how many nodes and cores it has, and which are free now. The pool lives in the manager's memory
(a restart rebuilds it from the running jobs' R); this is its picture in Redis, at most
REPORT_EVERY seconds old while the manager leads.
"""

from __future__ import annotations

from jobjournal.common import keys
from jobjournal.common.resources import encode_idset
from jobjournal.manager.scheduler import Pool

REPORT_EVERY = 1.0


def publish(redis, pool: Pool, exec_backend: str, token: str, now: float) -> None:
    whole, partial = pool.free_by_rank()
    redis.hset(keys.manager_resources(), mapping={
        "nodes": pool.size,
        "cores_per_node": pool.cores_per_node,
        "exec_backend": exec_backend,
        "free": encode_idset(whole),
        "partial": ",".join(f"{rank}:{cores}" for rank, cores in partial.items()),
        "updated": repr(now),
        "token": token,
    })
