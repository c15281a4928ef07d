"""One reader of the journals for all of a web server's event streams.

Each stream subscribes; a single thread (started with the first subscriber, gone a read after the
last one left) follows every partition's journal from its head and hands each batch of entries to
every subscriber that wants it, on the subscriber's event loop. So a thousand open pages cost one
blocking read, not a thousand threads (Starlette's thread pool has 40: streams holding one each
would starve every other request). A subscriber that does not keep up (its queue full), or any
subscriber when the reader lost its place (the journal trimmed past it, Redis trouble), gets
RESYNC: read the list again. Entries are never silently skipped.
"""

from __future__ import annotations

import asyncio
import logging
import threading

from jobjournal.common.journal import JournalEvent, JournalGap, advance, journal_heads, read_journals
from jobjournal.common.layout import Layout

log = logging.getLogger("jobjournal.web")

BLOCK_MS = 1000
BATCH = 1000
QUEUE = 1000
"""Items a subscriber may have waiting before it is told to resync."""
RESYNC = object()
"""What a subscriber's queue holds instead of news when it must read the list again."""


class Subscriber:
    """One stream's place: of every job (its items: lists of (job id, event name, partition)),
    or of one job (its items: True, there is news)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, job_id: int | None):
        self.loop, self.job_id = loop, job_id
        self.queue: asyncio.Queue = asyncio.Queue(QUEUE)

    def news(self, entries: list[JournalEvent]):
        if self.job_id is None:
            return [(entry.job_id, entry.name, entry.partition) for entry in entries if not entry.problem]
        return any(entry.job_id == self.job_id for entry in entries) or None

    def offer(self, item) -> None:
        """On the subscriber's loop: queue an item; when full, clear the queue and say RESYNC."""
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
        """A subscriber to every entry posted from now on (of one job, or all). Blocking (it may
        read the journals' heads): call it from a worker thread. Redis errors raise, subscribing
        nothing."""
        positions = None if self._reader is not None else self._heads()
        subscriber = Subscriber(loop, job_id)
        with self._lock:
            self._subscribers.add(subscriber)
            if self._reader is None:  # (positions None: a reader ended meanwhile; the new one resyncs)
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

    def _heads(self) -> dict:
        return journal_heads(self.redis, self.layout)

    def _follow(self, positions: dict | None) -> None:
        try:
            while self._still_wanted():
                try:
                    positions = self._follow_once(positions) if positions is not None else self._resync()
                except Exception as err:  # noqa: BLE001 - Redis trouble of any kind: say so, wait, start again
                    log.warning("following the journal: %s; trying again in 1s", err)
                    threading.Event().wait(1.0)
                    positions = None
        finally:
            with self._lock:
                if self._reader is threading.current_thread():
                    self._reader = None

    def _follow_once(self, positions: dict) -> dict | None:
        """One read; the positions after it (None after a gap: the heads must be read again)."""
        try:
            entries = read_journals(self.redis, positions, BATCH, BLOCK_MS)
        except JournalGap:
            return None
        advance(positions, entries)
        if entries:
            self._deliver({subscriber: subscriber.news(entries) for subscriber in self._current()})
        return positions

    def _resync(self) -> dict:
        """The heads, read again; every subscriber is told to read its list again."""
        positions = self._heads()
        self._deliver({subscriber: RESYNC for subscriber in self._current()})
        return positions

    def _still_wanted(self) -> bool:
        """Whether anyone still subscribes; if not, this reader is done (decided under the lock, so
        a subscriber that comes now starts a new one)."""
        with self._lock:
            if self._subscribers:
                return True
            if self._reader is threading.current_thread():
                self._reader = None
            return False

    def _current(self) -> list[Subscriber]:
        with self._lock:
            return list(self._subscribers)

    def _deliver(self, items: dict) -> None:
        for subscriber, item in items.items():
            if not item:
                continue
            try:
                subscriber.loop.call_soon_threadsafe(subscriber.offer, item)
            except RuntimeError:  # its loop is closed: the stream is gone
                self.unsubscribe(subscriber)
