"""Copying a legacy store (no layout record) into a partitioned one, offline.

The old store is only read: it stays as it was, for rollback. Into the new one (which must be
empty) go, under the partition of each job: its eventlog entries with their own ids, its
environment, its place in the job sets; then each partition's journal, rebuilt from its jobs'
eventlog entries in id order (seq 1, 2, ...: so a journal trimmed in the old store is whole again,
and every journal entry has the id of its eventlog entry, as posting makes them), and its head; the
inbox (entries with their ids) and each partition's inbox cursor, which is the old cursor; the id
generator counter; and last the layout record. Views are not copied: listers build them.

Run it with the manager, ingest workers and listers stopped (`jobjournal migrate` refuses while a
manager holds the lease, a lister beats or an rq worker serves the ingest queue). It holds every
event of a partition in memory while it writes that partition's journal (about 1 KB an event).
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict

from jobjournal.common import keys
from jobjournal.common.errors import JobJournalError
from jobjournal.common.events import entry_attachments
from jobjournal.common.formats import JOURNAL_VERSION
from jobjournal.common.journal import stream_order, text
from jobjournal.common.keys import LEGACY
from jobjournal.common.layout import Layout, create_layout, new_layout, read_layout

log = logging.getLogger("jobjournal.migrate")

CHUNK_JOBS = 500


class MigrationError(JobJournalError):
    """The stores are not as a migration needs them (a manager running, a target not empty, ...)."""


def migrate(source, target, partitions: int, report=lambda done, total: None, queues=None) -> dict[str, int]:
    """Copy the legacy store `source` into the empty store `target` with `partitions` partitions;
    what was copied (jobs, events, inbox entries). `report(done, total)` follows the jobs;
    `queues`: rq's Redis, when it is not the source store (its ingest workers must be stopped)."""
    _check(source, target)
    _check_stopped(source, source if queues is None else queues)
    layout = new_layout(partitions)  # recorded last, by create_layout
    inactive = source.zrange(LEGACY.inactive_jobs(), 0, -1, withscores=True)
    active = sorted(int(job_id) for job_id in source.smembers(LEGACY.active_jobs()))
    job_ids = [int(job_id) for job_id, _ in inactive] + active
    scores = {int(job_id): score for job_id, score in inactive}
    journals: dict[int, list] = defaultdict(list)
    events = 0
    for start in range(0, len(job_ids), CHUNK_JOBS):
        chunk = job_ids[start : start + CHUNK_JOBS]
        events += _copy_jobs(source, target, layout, chunk, scores, journals)
        report(start + len(chunk), len(job_ids))
    purged = int(source.hget(LEGACY.journal_head(), "purged") or 0)
    for part in layout.partitions:
        _write_journal(target, part, journals.pop(part.index, []), purged if part.index == 0 else 0)
    copied_inbox = _copy_inbox(source, target, layout)
    counter = source.get(keys.id_generator())
    if counter is not None:
        target.set(keys.id_generator(), counter)
    create_layout(target, partitions)
    return {"jobs": len(job_ids), "active": len(active), "events": events, "inbox": copied_inbox}


def _check(source, target) -> None:
    if not read_layout(source).legacy:
        raise MigrationError("the source store is partitioned already")
    if source.exists(keys.manager_lease()):
        raise MigrationError("a manager holds the source store's lease: stop it (and ingest workers, listers) first")
    if next(iter(target.scan_iter(count=100)), None) is not None:  # on a cluster: every node's keys
        raise MigrationError("the target store is not empty")


def _check_stopped(source, queues) -> None:
    """No lister or ingest worker may change the old store while it is copied."""
    from rq import Queue, Worker

    if source.zcount(keys.lister_members(), time.time() - 60, "+inf"):
        raise MigrationError("lister workers are running on the source store (they beat within the last minute): "
                             "stop them first")
    ingest = Worker.all(queue=Queue(keys.INGEST_QUEUE, connection=queues))
    if ingest:
        raise MigrationError(f"{len(ingest)} rq worker(s) serve the ingest queue ({ingest[0].name}, ...): stop them "
                             "first (a worker killed without stopping is listed until rq's key for it expires)")


def _copy_jobs(source, target, layout: Layout, job_ids: list[int], scores: dict[int, float], journals) -> int:
    with source.pipeline(transaction=False) as pipe:
        for job_id in job_ids:
            pipe.xrange(LEGACY.job_eventlog(job_id))
            pipe.get(LEGACY.job_environment(job_id))
        replies = pipe.execute()
    events = 0
    with target.pipeline(transaction=False) as pipe:
        for index, job_id in enumerate(job_ids):
            entries, environment = replies[2 * index], replies[2 * index + 1]
            part = layout.partition_of(job_id)
            for entry_id, fields in entries:
                pipe.xadd(part.job_eventlog(job_id), fields, id=entry_id)
                journals[part.index].append((stream_order(text(entry_id)), entry_id, job_id, fields))
            events += len(entries)
            if environment is not None:
                pipe.set(part.job_environment(job_id), environment)
            if job_id in scores:
                pipe.zadd(part.inactive_jobs(), {job_id: scores[job_id]})
            else:
                pipe.sadd(part.active_jobs(), job_id)
        pipe.execute()
    return events


def _write_journal(target, part, entries: list, purged: int) -> None:
    """A partition's journal from its jobs' eventlog entries, in id order, seq from 1."""
    entries.sort(key=lambda entry: entry[0])
    with target.pipeline(transaction=False) as pipe:
        for seq, (_, entry_id, job_id, fields) in enumerate(entries, 1):
            jobspec, r = entry_attachments(fields)  # an eventlog entry of format 1 has them as fields
            record = {b"v": JOURNAL_VERSION, b"seq": seq, b"id": job_id, b"name": fields[b"name"],
                      b"timestamp": fields[b"timestamp"], b"context": fields[b"context"],
                      b"data": jobspec or r or b""}
            pipe.xadd(part.journal(), record, id=entry_id)
        head = {"seq": len(entries), "purged": purged}
        if entries:
            head["last_id"] = entries[-1][1]
        pipe.hset(part.journal_head(), mapping=head)
        pipe.execute()


def _copy_inbox(source, target, layout: Layout) -> int:
    """The inbox, entry for entry (the requests not yet handled come after the cursor), and each
    partition's cursor: the old one."""
    entries = source.xrange(keys.manager_inbox())
    with target.pipeline(transaction=False) as pipe:
        for entry_id, fields in entries:
            pipe.xadd(keys.manager_inbox(), fields, id=entry_id)
        cursor = source.get(LEGACY.inbox_cursor())
        if cursor is not None:
            for part in layout.partitions:
                pipe.set(part.inbox_cursor(), cursor)
        pipe.execute()
    return len(entries)
