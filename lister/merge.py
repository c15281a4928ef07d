"""Walking one sorted set of every partition's view in one order: a lazy k-way merge.

Each partition's view has its own pending, running and inactive sets; a query wants them as if
they were one. Each partition is read a page at a time (all first pages in one round trip, and
a query sends the first pages of all its lists together: `first_commands`), and the members are
merged by (score, id) with a heap; a partition is read again only when its page is used up and
it may hold more. For the newest k of P partitions, pages of ceil(2k/P) + 8 are usually enough:
about 2k members read, not P*k. With one partition this is a plain paged walk.

Reads go through `read`: a function that runs a list of read commands (`packed.reads` on a client,
or a query's reader that sends more with its first round trip) and returns their raw replies.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable, Iterator

from jobjournal.common.keys import Partition
from jobjournal.common.packed import pairs

Member = tuple[Partition, bytes]
Read = Callable[[list[tuple]], list]


class SortedWalk:
    """One partition's sorted set, a page at a time: ascending by (score, member), or descending;
    with `above`, only members scored strictly above it (descending walks); with `after` (score, job
    id), only members strictly after it in the walk's order (the next page of a paged listing: read
    from its score on, the members of that score up to it skipped)."""

    def __init__(self, part: Partition, key: str, descending: bool, above: float | None = None,
                 after: tuple[float, int] | None = None):
        self.part = part
        self.key = key
        self.descending = descending
        self.above = above
        self.after = None if after is None else self.order(b"%d" % after[1], after[0])
        """The heap key of the member to start after."""
        self.after_score = None if after is None else after[0]
        self.start = 0
        self.done = False
        self.pending = 0
        """Members read and not yet taken off the heap."""

    def command(self, size: int, scores: bool = True) -> tuple:
        """The read of the next page (with the scores, to merge by)."""
        start, end = self.start, self.start + size - 1
        withscores = ("WITHSCORES",) if scores or self.after is not None else ()
        if self.after is not None:
            score = repr(self.after_score)
            if self.descending:
                low = f"({self.above!r}" if self.above is not None else "-inf"
                return ("ZREVRANGEBYSCORE", self.key, score, low, *withscores, "LIMIT", start, size)
            return ("ZRANGEBYSCORE", self.key, score, "+inf", *withscores, "LIMIT", start, size)
        if self.above is not None:
            return ("ZREVRANGEBYSCORE", self.key, "+inf", f"({self.above!r}", *withscores, "LIMIT", start, size)
        return ("ZREVRANGE" if self.descending else "ZRANGE", self.key, start, end, *withscores)

    def keeps(self, member: bytes, score: bytes | float) -> bool:
        """Whether a member read comes after `after` (every member does without one)."""
        return self.after is None or self.order(member, score) > self.after

    def order(self, member: bytes, score: bytes | float) -> tuple:
        """The heap key: the smallest comes first."""
        return (-float(score), -int(member)) if self.descending else (float(score), int(member))


class Merge:
    """The walks of one list over every partition, merged: `members` in the walks' common order."""

    def __init__(self, walks: list[SortedWalk], page: int):
        self.walks = walks
        self.alone = len(walks) == 1
        """One walk: nothing to merge (and no scores to read)."""
        self.size = page if self.alone else max(1, math.ceil(2 * page / len(walks)) + 8)

    def first_commands(self) -> list[tuple]:
        """The reads of every walk's first page, to send with other reads (replies to `members`)."""
        return [walk.command(self.size, scores=not self.alone) for walk in self.walks]

    def members(self, read: Read, first: list | None = None) -> Iterator[Member]:
        """Every member of every walk, in order; `first`: the replies to `first_commands`, if sent."""
        first = first if first is not None else read(self.first_commands())
        if self.alone:
            yield from self._alone(read, first[0])
            return
        heap: list = []
        self._push(self.walks, first, heap, read=read)
        while heap:
            _, index, member = heapq.heappop(heap)
            walk = self.walks[index]
            yield walk.part, member
            walk.pending -= 1
            if walk.pending == 0 and not walk.done:
                self._push([walk], read([walk.command(self.size)]), heap, index, read)

    def _alone(self, read: Read, found: list) -> Iterator[Member]:
        walk = self.walks[0]
        while True:
            walk.start += len(found)
            walk.done = len(found) < self.size
            if walk.after is None:
                yield from ((walk.part, member) for member in found)
            else:
                yield from ((walk.part, member) for member, score in pairs(found) if walk.keeps(member, score))
            if walk.done:
                return
            (found,) = read([walk.command(self.size, scores=False)])

    def _push(self, walks: list[SortedWalk], pages: list, heap: list, first_index: int | None = None,
              read: Read | None = None) -> None:
        """Put a page of each walk onto the heap (a page whose members all come before the walk's
        `after`: the next page too)."""
        for offset, (walk, found) in enumerate(zip(walks, pages, strict=True)):
            index = first_index if first_index is not None else offset
            while True:
                found = pairs(found)
                walk.start += len(found)
                walk.done = len(found) < self.size
                kept = [(member, score) for member, score in found if walk.keeps(member, score)]
                walk.pending = len(kept)
                for member, score in kept:
                    heapq.heappush(heap, (walk.order(member, score), index, member))
                if kept or walk.done or read is None:
                    break
                (found,) = read([walk.command(self.size)])
