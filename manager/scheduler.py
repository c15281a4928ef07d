"""Scheduling: a first-fit resource pool and the pending queue (priority, then submit order)."""

from __future__ import annotations

import bisect

from common.jobspec import Jobspec


class Pool:
    """Nodes (ranks) with cores; allocates whole tasks to nodes, first fit."""

    def __init__(self, nodes: int, cores_per_node: int):
        self.cores_per_node = cores_per_node
        self.free: list[list[int]] = [list(range(cores_per_node)) for _ in range(nodes)]

    @property
    def size(self) -> int:
        return len(self.free)

    def satisfiable(self, spec: Jobspec) -> str | None:
        """None if the pool could ever run the job, else why not."""
        per_node = self.cores_per_node // spec.cores_per_task
        if per_node == 0:
            return f"{spec.cores_per_task} cores per task, nodes have {self.cores_per_node}"
        nodes = spec.nodes or 1
        if nodes > self.size:
            return f"{nodes} nodes requested, the pool has {self.size}"
        if -(-spec.ntasks // nodes) > per_node and spec.nodes:
            return f"{spec.ntasks} tasks do not fit on {nodes} nodes"
        if spec.ntasks > per_node * self.size:
            return (
                f"{spec.ntasks} tasks of {spec.cores_per_task} cores do not fit on "
                f"{self.size} nodes of {self.cores_per_node} cores"
            )
        return None

    def allocate(self, spec: Jobspec) -> dict[int, list[int]] | None:
        """Take cores for the job, or None (nothing taken) if it does not fit now."""
        counts = self._plan(spec)
        if counts is None:
            return None
        allocation = {}
        for rank, ncores in counts.items():
            allocation[rank] = self.free[rank][:ncores]
            del self.free[rank][:ncores]
        return allocation

    def release(self, allocation: dict[int, list[int]]) -> None:
        for rank, cores in allocation.items():
            self.free[rank] = sorted(set(self.free[rank]).union(cores))

    def claim(self, allocation: dict[int, list[int]]) -> None:
        """Mark an allocation made before a restart as in use."""
        for rank, cores in allocation.items():
            taken = set(cores)
            self.free[rank] = [core for core in self.free[rank] if core not in taken]

    def _plan(self, spec: Jobspec) -> dict[int, int] | None:
        cpt = spec.cores_per_task
        if spec.nodes:
            share, extra = divmod(spec.ntasks, spec.nodes)
            needs = [(share + (i < extra)) * cpt for i in range(spec.nodes)]
            ranks = [rank for rank, free in enumerate(self.free) if len(free) >= needs[-1]]
            chosen: dict[int, int] = {}
            for need in needs:
                rank = next((r for r in ranks if r not in chosen and len(self.free[r]) >= need), None)
                if rank is None:
                    return None
                chosen[rank] = need
            return chosen
        counts: dict[int, int] = {}
        left = spec.ntasks
        for rank, free in enumerate(self.free):
            fit = min(len(free) // cpt, left)
            if fit:
                counts[rank] = fit * cpt
                left -= fit
            if not left:
                return counts
        return None


class PendingQueue:
    """Jobs waiting in SCHED, ordered by priority (high first), then id (old first)."""

    def __init__(self):
        self._order: list[tuple[int, int]] = []
        self._key: dict[int, tuple[int, int]] = {}

    def __len__(self) -> int:
        return len(self._order)

    def __contains__(self, job_id: int) -> bool:
        return job_id in self._key

    def add(self, job_id: int, priority: int) -> None:
        self.remove(job_id)
        key = (-priority, job_id)
        self._key[job_id] = key
        bisect.insort(self._order, key)

    def remove(self, job_id: int) -> None:
        key = self._key.pop(job_id, None)
        if key is not None:
            index = bisect.bisect_left(self._order, key)
            del self._order[index]

    def in_order(self):
        """(job id, priority) from the first to be scheduled to the last."""
        for negative_priority, job_id in self._order:
            yield job_id, -negative_priority

    def pop_first(self, count: int) -> None:
        for _, job_id in self._order[:count]:
            del self._key[job_id]
        del self._order[:count]
