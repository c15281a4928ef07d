"""One reader of the journals for all of a web server's event streams.

Each stream subscribes; a single thread (started with the first subscriber, gone a read after the
last one left) follows every partition's journal from its head and hands each batch of entries to
every subscriber that wants it, on the subscriber's event loop. So a thousand open pages cost one
blocking read, not a thousand threads (Starlette's thread pool has 40: streams holding one each
would starve every other request). A subscriber that does not keep up (its queue full) is told to
resync and read the list again; entries are never silently skipped.
"""

from __future__ import annotations

import asyncio
import logging
import threading

import redis as redis_lib

from jobjournal.common.journal import JournalEvent, JournalGap, journal_head, read_journals
from jobjournal.common.layout import Layout

log = logging.getLogger("jobjournal.web")

BLOCK_MS = 1000
BATCH = 1000
QUEUE = 256
"""Batches a subscriber may have waiting before it is told to resync."""
RESYNC = None
"""What a subscriber's queue holds instead of a batch when it must read the list again."""


class Subscriber:
    def __init__(self, loop: asyncio.AbstractEventLoop, job_id: int | None):
        self.loop, self.job_id = loop, job_id
        self.queue: asyncio.Queue = asyncio.Queue(QUEUE)

    def wants(self, entries: list[JournalEvent]) -> list[JournalEvent]:
        return entries if self.job_id is None else [entry for entry in entries if entry.job_id == self.job_id]

    def offer(self, item) -> None:
        """On the subscriber's loop: queue a batch (or RESYNC); when full, clear it and say RESYNC."""
        try:
            self.queue.put_nowait(item)
        except asyncio.QueueFull:
            while not self.queue.empty():
                self.queue.get_nowait()
            self.queue.put_nowait(RESYNC)


class JournalFanout:
    def __init__(self, redis, layout: Layout):
        self.redis, self.layout = redis, layout
        self._subscribers: set[Subscriber] = set()
        self._lock = threading.Lock()
        self._reader: threading.Thread | None = None

    def subscribe(self, loop: asyncio.AbstractEventLoop, job_id: int | None = None) -> Subscriber:
        """A subscriber to every entry posted from now on (of one job, or all); blocking (it may
        read the journals' heads): call it from a worker thread."""
        subscriber = Subscriber(loop, job_id)
        with self._lock:
            self._subscribers.add(subscriber)
            if self._reader is None:
                positions = {part: journal_head(self.redis, part) for part in self.layout.partitions}
                self._reader = threading.Thread(target=self._follow, args=(positions,), daemon=True,
                                                name="jobjournal-web-journal")
                self._reader.start()
        return subscriber

    def unsubscribe(self, subscriber: Subscriber) -> None:
        with self._lock:
            self._subscribers.discard(subscriber)

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)

    def _follow(self, positions: dict) -> None:
        partition = {part.index: part for part in positions}
        while self._still_wanted():
            try:
                entries = read_journals(self.redis, positions, BATCH, BLOCK_MS)
            except JournalGap:
                positions = {part: journal_head(self.redis, part) for part in self.layout.partitions}
                self._deliver({subscriber: RESYNC for subscriber in self._current()})
                continue
            except redis_lib.RedisError as err:
                log.warning("following the journal: %s; trying again in 1s", err)
                threading.Event().wait(1.0)
                continue
            for entry in entries:
                positions[partition[entry.partition]] = (entry.entry_id, entry.seq)
            if entries:
                wanted = {subscriber: subscriber.wants(entries) for subscriber in self._current()}
                self._deliver({subscriber: batch for subscriber, batch in wanted.items() if batch})

    def _still_wanted(self) -> bool:
        with self._lock:
            if not self._subscribers:
                self._reader = None
                return False
            return True

    def _current(self) -> list[Subscriber]:
        with self._lock:
            return list(self._subscribers)

    def _deliver(self, items: dict[Subscriber, list[JournalEvent] | None]) -> None:
        for subscriber, item in items.items():
            try:
                subscriber.loop.call_soon_threadsafe(subscriber.offer, item)
            except RuntimeError:  # its loop is closed: the stream is gone
                self.unsubscribe(subscriber)
