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

Elements are kept compressed (zstd, level 1) against a dictionary of a typical element (ZDICT:
their names, keys and shapes), about 76 bytes of ~830, plus ~140 of Python objects: four times as
many jobs fit the budget (a 1M-job store in 256 MB), for ~5 us a job when it is sealed and ~2 us
when a backlog sends it (zlib's raw deflate with the same dictionary took ~13 and ~3.5: its set-up
for each element was most of it, and was a tenth of the manager's CPU per event).
"""

from __future__ import annotations

from collections import OrderedDict

import msgspec
import zstandard

from jobjournal.common.events import eventlog_attachments
from jobjournal.common.reply_format import job_element

ENTRY_OVERHEAD = 140
"""Bytes of Python objects around one sealed element (its key, ordered-dict slot, bytes object)."""
ZDICT = (
    b'{"id":1015501940898923525,"eventlog":[{"name":"submit","timestamp":1796218232.4563375,"userid":2000,'
    b'"urgency":16,"version":2},{"name":"validate","timestamp":1796218232.5000153},{"name":"depend",'
    b'"timestamp":1796218232.5616496},{"name":"priority","timestamp":1796218232.568243,"priority":16},'
    b'{"name":"alloc","timestamp":1796218232.6073737},{"name":"start","timestamp":1796218232.6073737},'
    b'{"name":"exception","timestamp":1796218232.6780293,"type":"cancel","severity":0,"note":"",'
    b'"userid":2000},{"name":"finish","timestamp":1796218232.6780293,"status":0},{"name":"release",'
    b'"timestamp":1796218232.6849077,"ranks":"all","final":true},{"name":"free","timestamp":'
    b'1796218232.6849077},{"name":"clean","timestamp":1796218232.6849077}],"jobspec":{"command":["app",'
    b'"5"],"queue":"batch","name":"app5","cwd":"/home","duration":0.0,"sim":{"runtime":0.0}},"R":'
    b'{"version":1,"execution":{"R_lite":[{"rank":"0","children":{"core":"5"}}],"nodelist":["node0"],'
    b'"starttime":1796218232.6073737,"expiration":0.0}}}'
)
"""A typical element: what elements are compressed against (memory of one process: never stored)."""


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
        zdict = zstandard.ZstdCompressionDict(ZDICT, dict_type=zstandard.DICT_TYPE_RAWCONTENT)
        self._compressor = zstandard.ZstdCompressor(
            level=1, dict_data=zdict, write_checksum=False, write_content_size=True, write_dict_id=False
        )
        self._decompressor = zstandard.ZstdDecompressor(dict_data=zdict)
        """One of each for the History's life (a zstd context is made once, not per element; one thread)."""

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
        packed = self._compressor.compress(element)
        if not evict and self.size + _size(packed) > self.budget:
            return
        self._sealed[job_id] = packed
        self.size += _size(packed)
        while self.size > self.budget and self._sealed:
            _, oldest = self._sealed.popitem(last=False)
            self.size -= _size(oldest)

    def sealed(self, job_id: int) -> bytes | None:
        """The job's reply element, if remembered."""
        packed = self._sealed.get(job_id)
        return None if packed is None else self._decompressor.decompress(packed)

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


def _size(packed: bytes) -> int:
    return len(packed) + ENTRY_OVERHEAD
