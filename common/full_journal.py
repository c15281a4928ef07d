"""The full journal, as a consumer sees it: every job's eventlog (the backlog), a sentinel, then
live events, with nothing missed or seen twice across the boundary (docs/design.md, invariant 2)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import msgspec

from jobjournal.common import inbox, keys, messages
from jobjournal.common.consumers import forget_consumer, new_consumer_name
from jobjournal.common.formats import REPLY_VERSION
from jobjournal.common.journal import PURGE, JournalEvent, read_journal
from jobjournal.common.reply_format import BacklogJob, Sentinel, Unreadable
from jobjournal.common.reply_reader import ReplyReader


class Restarted(msgspec.Struct, frozen=True):
    """The full journal was requested again: forget the backlog received so far."""


def request_full_journal(redis, consumer: str, allow=(), deny=()) -> None:
    """Ask the manager for a full journal into keys.journal_reply(consumer) (emptied first)."""
    redis.delete(keys.journal_reply(consumer))
    request = messages.JournalRequest(
        consumer=consumer, allow=list(allow), deny=list(deny), reply_version=REPLY_VERSION
    )
    inbox.send(redis, request)


def follow_full_journal(
    redis, consumer: str | None = None, allow=(), deny=(), block_ms: int = 1000, stall_s: float = 15.0
) -> Iterator[BacklogJob | Unreadable | Sentinel | Restarted | JournalEvent | None]:
    """Everything a full consumer sees: the backlog, the sentinel, then live events, forever.

    `allow` and `deny` name the events wanted (purge entries come unless denied). Yields None when
    nothing arrived within `block_ms`, so the caller can look up; it stops by leaving the loop.
    If the reply stalls for `stall_s` (the manager failed over mid-backlog), the request is made
    again under a new consumer name and `Restarted` is yielded: drop the backlog seen so far.
    The reply stream is deleted after the sentinel.
    """
    consumer = consumer or new_consumer_name()
    sentinel = None
    while sentinel is None:
        request_full_journal(redis, consumer, allow, deny)
        with ReplyReader(redis, consumer, block_ms=block_ms) as reader:
            progress = time.monotonic()
            while sentinel is None:
                items = reader.next_batch()
                if items:
                    progress = time.monotonic()
                elif time.monotonic() - progress > stall_s:
                    break
                else:
                    yield None
                for item in items:
                    yield item
                    if isinstance(item, Sentinel):
                        sentinel = item
        redis.delete(keys.journal_reply(consumer))
        forget_consumer(redis, consumer)  # the manager's hold from the snapshot is not needed now
        if sentinel is None:
            consumer = new_consumer_name()  # a late answer to the old request cannot mix in
            yield Restarted()
    yield from _live(redis, sentinel.cursor, sentinel.seq, allow, deny, block_ms)


def _live(redis, cursor: str, seq: int, allow, deny, block_ms: int) -> Iterator[JournalEvent | None]:
    while True:
        entries = read_journal(redis, cursor, seq, block_ms=block_ms)
        if not entries:
            yield None
        for entry in entries:
            if _allowed(entry, allow, deny):
                yield entry
            cursor, seq = entry.entry_id, entry.seq


def _allowed(entry: JournalEvent, allow, deny) -> bool:
    """Whether a consumer asking for `allow`/`deny` gets the entry (an undecodable one: always, so
    it can set it aside; a purge: unless denied)."""
    if entry.problem:
        return True
    name = entry.name
    return (not allow or name in allow or name == PURGE) and name not in deny
