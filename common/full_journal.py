"""The full journal, as a consumer sees it: every job's eventlog (the backlog), a sentinel, then
live events, with nothing missed or seen twice across the boundary (docs/design.md, invariant 2).

In a partitioned store this holds per partition: each partition asked for sends its own backlog
and sentinel (with that partition's cursor and seq), and a consumer's position is a vector of
cursors, one per partition.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import msgspec

from jobjournal.common import inbox, messages
from jobjournal.common.consumers import forget_consumer, new_consumer_name
from jobjournal.common.errors import JobJournalError
from jobjournal.common.formats import REPLY_VERSION
from jobjournal.common.journal import PURGE, JournalEvent, read_journals
from jobjournal.common.keys import Partition
from jobjournal.common.layout import read_layout
from jobjournal.common.reply_format import BacklogJob, Sentinel, Unreadable
from jobjournal.common.reply_reader import ReplyReader


class Restarted(msgspec.Struct, frozen=True):
    """The full journal was requested again: forget the backlog received so far."""


def request_full_journal(redis, consumer: str, parts: list[Partition], allow=(), deny=()) -> None:
    """Ask the manager for a full journal of `parts` into each one's journal_reply(consumer)
    (emptied first)."""
    for part in parts:
        redis.delete(part.journal_reply(consumer))
    request = messages.JournalRequest(
        consumer=consumer, allow=list(allow), deny=list(deny), reply_version=REPLY_VERSION,
        partitions=[part.index for part in parts if part.tag],
    )
    inbox.send(redis, request)


def follow_full_journal(
    redis, consumer: str | None = None, allow=(), deny=(), partitions: list[int] | None = None,
    block_ms: int = 1000, stall_s: float = 15.0,
) -> Iterator[BacklogJob | Unreadable | Sentinel | Restarted | JournalEvent | None]:
    """Everything a full consumer sees: each partition's backlog and sentinel, then live events
    of all of them, forever.

    `partitions` names the partitions wanted by index (None: all). `allow` and `deny` name the
    events wanted (purge entries come unless denied). Yields None when nothing arrived within
    `block_ms`, so the caller can look up; it stops by leaving the loop. If a reply stalls for
    `stall_s` (the manager failed over mid-backlog), the request is made again under a new
    consumer name and `Restarted` is yielded: drop the backlog seen so far. Reply streams are
    deleted once read.
    """
    parts = _chosen(redis, partitions)
    consumer = consumer or new_consumer_name()
    while True:
        request_full_journal(redis, consumer, parts, allow, deny)
        sentinels: dict[Partition, Sentinel] = {}
        for part in parts:
            sentinel = yield from _backlog(redis, part, consumer, block_ms, stall_s)
            redis.delete(part.journal_reply(consumer))
            if sentinel is None:
                break
            sentinels[part] = sentinel
        for part in parts:  # the manager's holds from the snapshots last until every backlog is read
            forget_consumer(redis, part, consumer)
        if len(sentinels) == len(parts):
            break
        for part in parts:
            redis.delete(part.journal_reply(consumer))
        consumer = new_consumer_name()  # a late answer to the old request cannot mix in
        yield Restarted()
    positions = {part: (sentinel.cursor, sentinel.seq) for part, sentinel in sentinels.items()}
    yield from _live(redis, positions, allow, deny, block_ms)


def _chosen(redis, partitions: list[int] | None) -> list[Partition]:
    layout = read_layout(redis)
    if partitions is None:
        return layout.partitions
    unknown = [index for index in partitions if not 0 <= index < layout.size]
    if unknown:
        raise JobJournalError(f"no partition {unknown[0]}: the store has {layout.size}")
    return [layout.partitions[index] for index in sorted(set(partitions))]


def _backlog(redis, part: Partition, consumer: str, block_ms: int, stall_s: float):
    """Yield one partition's backlog items and its sentinel; return the sentinel (None: stalled)."""
    with ReplyReader(redis, part, consumer, block_ms=block_ms) as reader:
        progress = time.monotonic()
        while True:
            items = reader.next_batch()
            if items:
                progress = time.monotonic()
            elif time.monotonic() - progress > stall_s:
                return None
            else:
                yield None
            for item in items:
                yield item
                if isinstance(item, Sentinel):
                    return item


def _live(redis, positions: dict[Partition, tuple[str, int]], allow, deny, block_ms: int):
    while True:
        entries = read_journals(redis, positions, block_ms=block_ms)
        if not entries:
            yield None
        by_index = {part.index: part for part in positions}
        for entry in entries:
            if _allowed(entry, allow, deny):
                yield entry
            positions[by_index[entry.partition]] = (entry.entry_id, entry.seq)


def _allowed(entry: JournalEvent, allow, deny) -> bool:
    """Whether a consumer asking for `allow`/`deny` gets the entry (an undecodable one: always, so
    it can set it aside; a purge: unless denied)."""
    if entry.problem:
        return True
    name = entry.name
    return (not allow or name in allow or name == PURGE) and name not in deny
