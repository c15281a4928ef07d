"""Scheduling: a first-fit resource pool and the pending queue (priority, then submit order)."""

from __future__ import annotations

import heapq
from bisect import bisect_left

from jobjournal.common.jobspec import Jobspec


class Pool:
    """Nodes (ranks) with cores; allocates whole tasks to nodes, first fit."""

    def __init__(self, nodes: int, cores_per_node: int):
        self.cores_per_node = cores_per_node
        self.free: list[list[int]] = [list(range(cores_per_node)) for _ in range(nodes)]
        self.free_cores = nodes * cores_per_node
        self._open: list[int] = list(range(nodes))
        """A heap of ranks, holding every rank with a free core (and some that have none left, dropped
        when they come to the top): first fit starts at its lowest, not at rank 0 (with tens of
        thousands of jobs running, scanning full nodes was most of the manager's time), and a job
        that takes the last core of a rank does not scan the full ranks after it either."""

    @property
    def size(self) -> int:
        return len(self.free)

    def free_by_rank(self) -> tuple[list[int], dict[int, int]]:
        """The ranks with every core free, and {rank: free cores} of those with some but not all."""
        whole = [rank for rank, cores in enumerate(self.free) if len(cores) == self.cores_per_node]
        partial = {rank: len(cores) for rank, cores in enumerate(self.free) if 0 < len(cores) < self.cores_per_node}
        return whole, partial

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
            self.free_cores -= ncores
        return allocation

    def _first(self) -> int:
        """The lowest rank with a free core (the pool's size when none has)."""
        heap, free = self._open, self.free
        while heap and not free[heap[0]]:
            heapq.heappop(heap)
        return heap[0] if heap else len(free)

    def _reopen(self, rank: int) -> None:
        """A rank that had no free core has one again."""
        if len(self._open) > 2 * len(self.free):  # ranks emptied and refilled deep in the heap, many times
            self._open = [index for index, cores in enumerate(self.free) if cores]
            heapq.heapify(self._open)
        else:
            heapq.heappush(self._open, rank)

    def holds(self, allocation: dict[int, list[int]]) -> bool:
        """Whether every rank and core of the allocation is in this pool (a restarted manager's pool
        may be smaller than the one that allocated)."""
        return self._within(allocation) == allocation

    def _within(self, allocation: dict[int, list[int]]) -> dict[int, list[int]]:
        return {rank: [core for core in cores if core < self.cores_per_node]
                for rank, cores in allocation.items() if rank < self.size}

    def release(self, allocation: dict[int, list[int]]) -> None:
        """Free an allocation's cores (those of it outside the pool are ignored)."""
        for rank, cores in self._within(allocation).items():
            free = self.free[rank]
            was_full = not free
            for core in cores:  # into its place in the sorted free list, once (a few cores: no re-sort)
                index = bisect_left(free, core)
                if index == len(free) or free[index] != core:
                    free.insert(index, core)
                    self.free_cores += 1
            if was_full and free:
                self._reopen(rank)

    def claim(self, allocation: dict[int, list[int]]) -> None:
        """Mark an allocation made before a restart as in use (what of it is in the pool)."""
        for rank, cores in self._within(allocation).items():
            taken = set(cores)
            before = len(self.free[rank])
            self.free[rank] = [core for core in self.free[rank] if core not in taken]
            self.free_cores -= before - len(self.free[rank])

    def _plan(self, spec: Jobspec) -> dict[int, int] | None:
        cpt = spec.cores_per_task
        if spec.ntasks * cpt > self.free_cores:
            return None
        if spec.nodes:
            share, extra = divmod(spec.ntasks, spec.nodes)
            needs = [(share + (i < extra)) * cpt for i in range(spec.nodes)]
            ranks = [rank for rank in range(self._first(), len(self.free)) if len(self.free[rank]) >= needs[-1]]
            chosen: dict[int, int] = {}
            for need in needs:
                rank = next((r for r in ranks if r not in chosen and len(self.free[r]) >= need), None)
                if rank is None:
                    return None
                chosen[rank] = need
            return chosen
        counts: dict[int, int] = {}
        left = spec.ntasks
        for rank in range(self._first(), len(self.free)):
            fit = min(len(self.free[rank]) // cpt, left)
            if fit:
                counts[rank] = fit * cpt
                left -= fit
            if not left:
                return counts
        return None


class PendingQueue:
    """Jobs waiting in SCHED, ordered by priority (high first), then id (old first).

    A heap with lazy removal, so adding, removing and taking the first job stay O(log n) with
    100K jobs pending (a burst accepted at once): a removed or re-prioritized job's old entry
    stays in the heap until it comes up, and is skipped then."""

    def __init__(self):
        self._heap: list[tuple[int, int]] = []
        self._key: dict[int, tuple[int, int]] = {}

    def __len__(self) -> int:
        return len(self._key)

    def __contains__(self, job_id: int) -> bool:
        return job_id in self._key

    def add(self, job_id: int, priority: int) -> None:
        key = (-priority, job_id)
        self._key[job_id] = key
        heapq.heappush(self._heap, key)
        if len(self._heap) > 2 * len(self._key) + 1000:  # mostly stale entries: compact
            self._heap = list(self._key.values())
            heapq.heapify(self._heap)

    def remove(self, job_id: int) -> None:
        self._key.pop(job_id, None)

    def first(self) -> tuple[int, int] | None:
        """(job id, priority) of the first job to be scheduled, or None."""
        heap = self._heap
        while heap:
            negative_priority, job_id = heap[0]
            if self._key.get(job_id) == heap[0]:
                return job_id, -negative_priority
            heapq.heappop(heap)  # removed, or added again with another priority
        return None

    def pop_first(self, count: int = 1) -> None:
        for _ in range(count):
            first = self.first()
            if first is None:
                return
            heapq.heappop(self._heap)
            del self._key[first[0]]

    def in_order(self) -> list[tuple[int, int]]:
        """(job id, priority) from the first to be scheduled to the last (sorts: for inspection)."""
        return [(job_id, -negative_priority) for negative_priority, job_id in sorted(self._key.values())]
