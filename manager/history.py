"""The manager's memory of finished jobs: each one's full-journal element, encoded once.

A full journal sends every job's whole eventlog. Reading 100K eventlogs back from Redis for
each request is the slow part of a rebuild, and the manager posted every one of those events
itself, so it keeps them (as Flux's job manager keeps its inactive jobs in memory):

- an active job collects its events, as eventlog parts, while they are posted;
- when it becomes inactive it is sealed: its reply element (`common.reply_format.job_element`:
  id, eventlog, jobspec and R as one JSON object) is built once. An inactive job's eventlog
  never changes again (until purge);
- jobs finished before this leadership term are remembered the first time a backlog reads
  them from Redis; the oldest entries are dropped beyond the memory budget.

Only a job that was inactive at the backlog's snapshot is served from here, so an element never
holds an event after the snapshot's cursor. The memory belongs to one leadership term.
"""

from __future__ import annotations

from collections import OrderedDict

import msgspec

from jobjournal.common.events import eventlog_attachments
from jobjournal.common.reply_format import job_element

ENTRY_OVERHEAD = 100
"""Bytes of Python objects around one sealed element (dict slot, bytes object)."""


class _Open(msgspec.Struct):
    parts: list[bytes]
    jobspec: bytes = b""
    R: bytes = b""


class History:
    def __init__(self, budget_bytes: int):
        self.budget = budget_bytes
        self.size = 0
        self._open: dict[int, _Open] = {}
        self._sealed: OrderedDict[int, bytes] = OrderedDict()
        """Oldest first: an OrderedDict drops its first entry in O(1) (a plain dict slows down)."""

    def __len__(self) -> int:
        return len(self._sealed)

    # -- filled as jobs live
    def record(self, job_id: int, name: str, timestamp: str, context: bytes, public: bytes, final: bool) -> None:
        """A posted event's eventlog fields (`public`: the redacted jobspec or R it carries);
        `final`: the job is inactive with it."""
        job = self._open.get(job_id)
        if job is None:
            job = self._open[job_id] = _Open([])
        job.parts.append(_part(name.encode(), timestamp.encode(), context))
        if public:
            if name == "submit":
                job.jobspec = public
            elif name == "alloc":
                job.R = public
        if final:
            self.seal(job_id)

    def adopt(self, job_id: int, entries: list[dict[bytes, bytes]]) -> None:
        """An active job restored from its eventlog entries after a manager restart."""
        jobspec, r = eventlog_attachments(entries)
        self._open[job_id] = _Open([eventlog_part(fields) for fields in entries], jobspec or b"", r or b"")

    def seal(self, job_id: int) -> None:
        """The job became inactive: its eventlog is complete."""
        job = self._open.pop(job_id, None)
        if job is not None:
            self.remember(job_id, job_element(job_id, b"[" + b",".join(job.parts) + b"]", job.jobspec, job.R))

    # -- read by full journals
    def remember(self, job_id: int, element: bytes, evict: bool = True) -> None:
        """A job's reply element (`job_element`), complete for good. Past the
        budget the oldest entries go (`evict`), or this one is not kept: a backlog reading old
        jobs from Redis must not push out the ones it is about to read (a scan through a FIFO
        would otherwise evict everything once the jobs outgrow the budget)."""
        if self.budget <= 0:
            return
        self.forget([job_id])
        if not evict and self.size + _size(element) > self.budget:
            return
        self._sealed[job_id] = element
        self.size += _size(element)
        while self.size > self.budget and self._sealed:
            _, oldest = self._sealed.popitem(last=False)
            self.size -= _size(oldest)

    def sealed(self, job_id: int) -> bytes | None:
        """The job's reply element, if remembered."""
        return self._sealed.get(job_id)

    def forget(self, job_ids) -> None:
        """Purged jobs."""
        for job_id in job_ids:
            element = self._sealed.pop(job_id, None)
            if element is not None:
                self.size -= _size(element)


def eventlog_part(fields: dict[bytes, bytes]) -> bytes:
    """One eventlog entry as an item of a reply element's eventlog: {"name":…,"timestamp":…,<context>}."""
    return _part(fields[b"name"], fields[b"timestamp"], fields[b"context"])


def _part(name: bytes, timestamp: bytes, context: bytes) -> bytes:
    inner = b"" if context == b"{}" else b"," + context[1:-1]
    return b'{"name":"%s","timestamp":%s%s}' % (name, timestamp, inner)


def _size(element: bytes) -> int:
    return len(element) + ENTRY_OVERHEAD
