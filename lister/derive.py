"""Deriving a reply's backlog into a view generation: the loop every rebuilding process runs."""

from __future__ import annotations

import logging
import time

from jobjournal.common import reply_format as rf
from jobjournal.common.deadletters import set_aside
from jobjournal.lister.model import view_from_events
from jobjournal.lister.view import BulkWriter

log = logging.getLogger("jobjournal.lister")

STALL_S = 15.0
"""A reply that sends nothing for this long stalled (its manager failed over): give up."""


def derive_all(reader, writer: BulkWriter, redis, consumer: str, go_on) -> rf.Sentinel | None:
    """Derive what `reader` (a common.reply_reader.ReplyReader or a ClaimingReader) gives into `writer` until the
    sentinel, which it returns; None if the reply stalled (nothing for STALL_S) or `go_on()`,
    asked before each batch, said no."""
    progress = time.monotonic()
    while go_on():
        items = reader.next_batch()
        sentinel = derive_into(writer, items, redis, consumer)
        if sentinel is not None:
            return sentinel
        if items:
            progress = time.monotonic()
        elif time.monotonic() - progress > STALL_S:
            log.warning("full journal for %s stalled", consumer)
            return None
    return None


def derive_into(writer: BulkWriter, items, redis, consumer: str) -> rf.Sentinel | None:
    """Write the jobs among `items` into `writer`; the sentinel, if it is among them."""
    for item in items:
        if isinstance(item, rf.Sentinel):
            return item
        if isinstance(item, rf.Unreadable):
            set_aside(redis, writer.part.journal_reply(consumer), item.entry_id, item.problem)
            writer.skipped += 1
            continue
        writer.add(view_from_events(item.job_id, item.events, item.jobspec, item.R))
    return None
