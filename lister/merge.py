"""Walking one sorted set of every partition's view in one order: a lazy k-way merge.

Each partition's view has its own pending, running and inactive sets; a query wants them as if
they were one. Each partition is read a page at a time (all first pages in one round trip), and
the members are merged by (score, id) with a heap; a partition is read again only when its page
is used up and it may hold more. For the newest k of P partitions, pages of ceil(2k/P) + 8 are
usually enough: about 2k members read, not P*k. With one partition this is a plain paged walk.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterator

from jobjournal.common.keys import Partition
from jobjournal.common.packed import each

Member = tuple[Partition, bytes]


class SortedWalk:
    """One partition's sorted set, a page at a time: ascending by (score, member), or descending;
    with `above`, only members scored strictly above it (descending walks)."""

    def __init__(self, part: Partition, key: str, descending: bool, above: float | None = None):
        self.part = part
        self.key = key
        self.descending = descending
        self.above = above
        self.start = 0
        self.done = False
        self.pending = 0
        """Members read and not yet taken off the heap."""

    def ask(self, client, size: int, scores: bool = True):
        """Ask `client` (or a pipeline) for the next page (with the scores, to merge by)."""
        start, end = self.start, self.start + size - 1
        if self.above is not None:
            return client.zrevrangebyscore(self.key, "+inf", f"({self.above!r}", start=start, num=size,
                                           withscores=scores)
        if self.descending:
            return client.zrevrange(self.key, start, end, withscores=scores)
        return client.zrange(self.key, start, end, withscores=scores)

    def order(self, member: bytes, score: float) -> tuple:
        """The heap key: the smallest comes first."""
        return (-score, -int(member)) if self.descending else (score, int(member))


def merged(redis, walks: list[SortedWalk], page: int) -> Iterator[Member]:
    """Every member of every walk, in the walks' common order."""
    if len(walks) == 1:
        yield from _alone(redis, walks[0], page)
        return
    size = max(1, math.ceil(2 * page / len(walks)) + 8)
    heap: list = []
    _fill(redis, walks, size, heap)
    while heap:
        _, index, member = heapq.heappop(heap)
        walk = walks[index]
        yield walk.part, member
        walk.pending -= 1
        if walk.pending == 0 and not walk.done:
            _fill(redis, [walk], size, heap, index)


def _alone(redis, walk: SortedWalk, size: int) -> Iterator[Member]:
    """One walk's members, a page at a time: nothing to merge (and no scores to parse)."""
    while not walk.done:
        found = walk.ask(redis, size, scores=False)
        walk.start += len(found)
        walk.done = len(found) < size
        for member in found:
            yield walk.part, member


def _fill(redis, walks: list[SortedWalk], size: int, heap: list, first_index: int | None = None) -> None:
    """Read the next page of each walk (one round trip) onto the heap."""
    pages = each(redis, walks, lambda client, walk: walk.ask(client, size))
    for offset, (walk, found) in enumerate(zip(walks, pages, strict=True)):
        index = first_index if first_index is not None else offset
        walk.start += len(found)
        walk.done = len(found) < size
        walk.pending = len(found)
        for member, score in found:
            heapq.heappush(heap, (walk.order(member, score), index, member))
