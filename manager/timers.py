"""One-shot timers keyed by job id (a new timer for a job replaces the old one)."""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable


class Timers:
    def __init__(self):
        self._heap: list[tuple[float, int, int]] = []
        self._live: dict[int, tuple[int, Callable[[], None]]] = {}
        self._counter = itertools.count()

    def __len__(self) -> int:
        return len(self._live)

    def set(self, due: float, job_id: int, action: Callable[[], None]) -> None:
        token = next(self._counter)
        self._live[job_id] = (token, action)
        heapq.heappush(self._heap, (due, token, job_id))

    def cancel(self, job_id: int) -> None:
        self._live.pop(job_id, None)

    def next_due(self) -> float | None:
        self._drop_cancelled()
        return self._heap[0][0] if self._heap else None

    def pop_due(self, now: float) -> list[Callable[[], None]]:
        actions = []
        while self._heap and self._heap[0][0] <= now:
            _, token, job_id = heapq.heappop(self._heap)
            live = self._live.get(job_id)
            if live and live[0] == token:
                del self._live[job_id]
                actions.append(live[1])
        return actions

    def _drop_cancelled(self) -> None:
        while self._heap:
            _, token, job_id = self._heap[0]
            live = self._live.get(job_id)
            if live and live[0] == token:
                return
            heapq.heappop(self._heap)
