"""The manager process: holds the lease, reads its inbox, runs the lifecycle, posts events.

One loop iteration reads a batch of inbox requests, handles them, lets jobs settle, posts
every resulting event together with the new inbox cursor (one atomic step per batch),
answers the requests whose effects it wrote, then does the side effects (exec tasks), one
chunk of each full journal being written, and purging. A restarted manager rebuilds everything from Redis.
"""

from __future__ import annotations

import logging
import threading
import time

import msgspec
import redis as redis_lib

from jobjournal.common import identity, inbox, keys, messages
from jobjournal.common.deadletters import set_aside
from jobjournal.common.errors import CorruptEntry
from jobjournal.common.faults import FaultPoints
from jobjournal.common.identity import NotAuthenticated
from jobjournal.common.journal import stream_order
from jobjournal.common.layout import store_layout
from jobjournal.common.lease import Lease, run_while_holding
from jobjournal.common.settings import Settings
from jobjournal.common.throttle import Throttle
from jobjournal.manager import resource_report
from jobjournal.manager.backlog import Backlog, start_backlog
from jobjournal.manager.fences import Fences
from jobjournal.manager.history import History
from jobjournal.manager.jobs import restore_job
from jobjournal.manager.journal_trim import trim_floor
from jobjournal.manager.lifecycle import Lifecycle
from jobjournal.manager.posting import EventPoster
from jobjournal.manager.purge import purge_candidates, purge_jobs
from jobjournal.manager.requests import ADMIN_USERID, RequestHandler

log = logging.getLogger("jobjournal.manager")

INBOX_BATCH = 64
BIG_READ_BYTES = 16 << 20
"""An inbox read past this many bytes makes the next read take one entry: a run of entries near
the size limit is read one at a time, not 64 (a gigabyte) at once."""
FLUSH_EVENTS = 2000
STEP_EVENTS = 20000
"""Inbox entries handled in one step stop after this many events. Accepting comes first (a
burst of 20 requests of 1000 jobs is in within one step, ~0.3 s), then jobs move on (settle's
own budget)..."""
ACCEPT_AHEAD = 20000
STEP_EVENTS_BUSY = 2000
"""... but with more than ACCEPT_AHEAD jobs active, a step accepts only STEP_EVENTS_BUSY: under a
flood the rest waits in the inbox (durably: ingest acknowledged it), and the manager's memory,
steps and restarts stay bounded by what it runs, not by what was offered."""
MAX_BLOCK_MS = 100
PURGE_EVERY = 1.0
INBOX_TRIM_EVERY = 5.0
ON_BEHALF = (messages.Cancel, messages.SetUrgency, messages.RaiseException, messages.Purge)
"""Requests that act for a user: with identity=acl each must be proved (common/identity.py)."""
JOURNAL_TRIM_EVERY = 2.0
RESTORE_CHUNK = 1000
REPLY_TTL = 300


class ManagerCounts:
    """What a manager process has done since it started, for its metrics (jobjournal/metrics/process.py)."""

    def __init__(self):
        self.terms = 0
        """Times this process took the manager lease."""
        self.steps = 0
        self.step_seconds = 0.0
        self.posted_earlier = 0
        """Events posted in this process's earlier terms."""


class Manager:
    def __init__(self, redis, settings: Settings, clock=time.time, queues=None):
        self.redis = redis
        self.queues = queues
        """rq's Redis when it is not the store (None: the store)."""
        self.settings = settings
        self.clock = clock
        self.lease = Lease(redis, keys.manager_lease(), settings.lease_ttl)
        self.leading = threading.Event()
        self.faults = FaultPoints(settings.fault)
        self.counts = ManagerCounts()
        self.poster: EventPoster | None = None
        self._new_term()

    @property
    def events_posted(self) -> int:
        """Events this process has posted, in every term."""
        poster = self.poster
        return self.counts.posted_earlier + (poster.posted if poster is not None else 0)

    def _new_term(self) -> None:
        if self.poster is not None:  # folded at once: a scrape meanwhile, or a failed start, counts it once
            self.counts.posted_earlier += self.poster.posted
            self.poster = None
        self.layout = store_layout(self.redis, self.settings.partitions)
        if self.layout.legacy and self.settings.partitions > 1:
            log.warning("this store is in the legacy layout; JOBJOURNAL_PARTITIONS=%d is ignored "
                        "(`jobjournal migrate` makes a partitioned copy)", self.settings.partitions)
        self.fences = Fences(self.redis, self.layout, self.lease)
        self.history = History(self.settings.backlog_cache_mb * 2**20)
        self.poster = EventPoster(
            self.redis, self.layout, self.lease.token, self.settings.journal_maxlen, self._renew, self.history,
            batch_events=self.settings.post_batch_events, faults=self.faults,
        )
        self.life = Lifecycle(
            self.redis, self.settings, self.poster, self.clock, self._checkpoint, self.queues, self._post_queued
        )
        self.backlogs: list[Backlog] = []
        self.journal_requests: list[messages.JournalRequest] = []
        self.handler = RequestHandler(self.redis, self.layout, self.life, self.purge, self.journal_requests.append)
        self.replies: list[tuple[str, messages.Reply]] = []
        """(reply list key, reply) to send with the next flush."""
        self.inbox_cursor = "0-0"
        self._cursor_moved = False
        self._purges = Throttle(PURGE_EVERY, self.clock)
        self._inbox_trims = Throttle(INBOX_TRIM_EVERY)
        self._submissions_in_inbox = False
        self._big_reads = False
        """The last inbox read was past BIG_READ_BYTES: read one entry at a time."""
        self._ingest_key: bytes | None = None
        self._resource_reports = Throttle(resource_report.REPORT_EVERY)
        self._journal_trims = Throttle(JOURNAL_TRIM_EVERY)

    # -- the process
    def run(self, stop: threading.Event | None = None) -> None:
        """Wait for the lease, lead until `stop` is set; on lease loss or Redis trouble, wait again."""
        stop = stop or threading.Event()
        run_while_holding(self.lease, stop, self._lead, active=self.leading, log=log)

    def _lead(self, stop: threading.Event) -> None:
        started = time.monotonic()
        self._new_term()
        self.counts.terms += 1
        self.fences.take()
        count = self.restore()
        self.faults.reached("manager.restored")
        self.leading.set()
        log.info("leading: %d active jobs restored in %.3fs", count, time.monotonic() - started)
        while not stop.is_set():
            self.step()

    # -- one iteration
    def _checkpoint(self) -> None:
        """During long work: keep the lease, and write queued events with the inbox cursor (the
        cursor moves only once an entry's effects are all queued, so a restart replays none of them)."""
        self._renew()
        if len(self.poster) >= FLUSH_EVENTS:
            self._post_queued()

    def _renew(self) -> None:
        self.lease.keep("the manager lease")
        self.fences.keep()

    def step(self) -> None:
        started = time.monotonic()
        try:
            self._step()
        finally:
            self.counts.steps += 1
            self.counts.step_seconds += time.monotonic() - started

    def _step(self) -> None:
        self._renew()
        entries = self._read_inbox()
        posted_before = self.poster.posted
        for entry_id, fields in entries:
            self._renew()  # an entry may take long (a big one to decode): the lease outlasts any run of them
            self._handle_entry(entry_id, fields)
            self.inbox_cursor, self._cursor_moved = entry_id, True
            if len(self.poster) >= FLUSH_EVENTS:
                self.flush()  # accept first (submit events out, cursor moved); move jobs on below
            if self.poster.posted - posted_before >= self._step_events():
                break  # the rest of the inbox waits for the next step
        self.life.settle()
        self.life.poll_backend()
        self.life.settle()
        self.flush()
        self._write_backlogs()
        self._purge_if_due()
        self._trim_inbox_if_due()
        if self._resource_reports.due():
            resource_report.publish(self.redis, self.life.pool, self.settings.exec_backend, self.lease.token,
                                    self.clock())
        self._trim_journal_if_due()

    def _step_events(self) -> int:
        return STEP_EVENTS if len(self.life.jobs) < ACCEPT_AHEAD else STEP_EVENTS_BUSY

    def _read_inbox(self):
        block = None if self.backlogs or self.life.busy else self._block_ms()
        entries = inbox.read(self.redis, self.inbox_cursor, 1 if self._big_reads else INBOX_BATCH, block)
        self._big_reads = sum(len(value) for _, fields in entries for value in fields.values()) > BIG_READ_BYTES
        return entries

    def _block_ms(self) -> int:
        next_due = self.life.timers.next_due()
        if next_due is None:
            return MAX_BLOCK_MS
        return max(1, min(MAX_BLOCK_MS, int((next_due - self.clock()) * 1000)))

    def _handle_entry(self, entry_id: str, fields: dict) -> None:
        try:
            request = inbox.decode(fields, inbox.entry_limit(self.settings.max_request_bytes))
        except CorruptEntry as err:
            self.dead_letter(entry_id, fields, str(err))
            reply_to, user = messages.reply_to_of(fields.get(inbox.FIELD, b""))
            if reply_to:  # its sender is waiting: it hears why at once, not after its timeout
                self.replies.append((keys.reply(reply_to, user), messages.Reply(error=f"request refused: {err}")))
            return
        self._submissions_in_inbox |= isinstance(request, messages.SubmitJobs)
        try:
            request = self._as_sender(request)
        except NotAuthenticated as err:
            self.dead_letter(entry_id, fields, str(err))
            if request.reply_to:
                self.replies.append((_reply_key(request), messages.Reply(error=str(err))))
            return
        if isinstance(request, messages.Purge | messages.JournalRequest):
            self.poster.cursor_everywhere()  # their effects bypass the poster: no partition may replay them
        reply = self.handler.handle(request, entry_id)
        if request.reply_to and reply is not None:
            self.replies.append((_reply_key(request), reply))

    def _as_sender(self, request: messages.AnyRequest) -> messages.AnyRequest:
        """With identity=acl, a request that acts for a user, with the uid its proof establishes
        (NotAuthenticated if none does); unchanged otherwise."""
        if self.settings.identity != "acl":
            return request
        if isinstance(request, messages.SubmitJobs):
            if self._ingest_key is None:
                self._ingest_key = identity.ingest_key(self.redis)
            if not identity.sealed_by_ingest(self._ingest_key, request):
                raise NotAuthenticated("not authenticated: a submission not sealed by an ingest worker")
            return request
        if not isinstance(request, ON_BEHALF):
            return request
        uid = identity.verified_uid(self.redis, request.user, request.proof, identity.request_body(request), once=True)
        if isinstance(request, messages.Purge):
            if uid != ADMIN_USERID:
                raise NotAuthenticated(f"purge is for uid {ADMIN_USERID} alone; user {request.user} is uid {uid}")
            return request
        return msgspec.structs.replace(request, userid=uid)

    def _post_queued(self) -> None:
        """Post queued events with the inbox cursor (every handled entry's effects are queued by
        then: a restart replays none of them), then answer the handled requests: their effects are
        written, and a restart will not read them again to answer."""
        self.poster.flush(self.inbox_cursor if self._cursor_moved else "")
        self._cursor_moved = False
        for job_id, why in self.poster.take_set_aside():
            self._set_job_aside(job_id, why)
        self._send_replies()

    def _set_job_aside(self, job_id: int, why: str) -> None:
        """A job whose own keys are wrong: recorded as a dead letter with why, and forgotten (its
        cores given back); the rest goes on. Its keys are the operator's to mend or purge."""
        log.error("job %d set aside: %s", job_id, why)
        self.dead_letter("", {b"job": str(job_id).encode()}, f"job set aside: {why}")
        self.history.forget([job_id])
        self.poster.forget(job_id)
        self.life.forget(job_id)

    def _send_replies(self) -> None:
        if not self.replies:
            return
        pipe = self.redis.pipeline(transaction=False)
        for key, reply in self.replies:
            pipe.rpush(key, messages.encode(reply))
            pipe.expire(key, REPLY_TTL)
        pipe.execute()
        self.replies = []
        self.faults.reached("manager.answered")

    def flush(self) -> None:
        """Post queued events with the inbox cursor and answer, then do the side effects."""
        self._post_queued()
        self.life.run_after_flush()
        self.faults.reached("manager.dispatched")
        for request in self.journal_requests:
            for part in self._asked(request):
                self.backlogs.append(start_backlog(self.redis, part, request, self.history))
        self.journal_requests.clear()

    def _asked(self, request: messages.JournalRequest):
        """The partitions a full-journal request asks for (all when it names none); a request that
        names a partition the store lacks gets none."""
        parts = self.layout.partitions
        if not request.partitions:
            return parts
        if any(not 0 <= index < len(parts) for index in request.partitions):
            log.warning("full journal for %s: no partition %s", request.consumer, request.partitions)
            return []
        return [parts[index] for index in sorted(set(request.partitions))]

    def _write_backlogs(self) -> None:
        for backlog in self.backlogs:
            backlog.write_chunk(self.redis)
        self.backlogs = [backlog for backlog in self.backlogs if not backlog.done]

    def _trim_journal_if_due(self) -> None:
        """Drop journal entries every fresh registered consumer has read, keeping the last
        `journal_keep_s` seconds; the hard cap (`journal_maxlen`, on every XADD) bounds the rest."""
        if not self._journal_trims.due():
            return
        settings = self.settings
        for part in self.layout.partitions:
            floor = trim_floor(self.redis, part, self.clock(), settings.journal_consumer_ttl, settings.journal_keep_s)
            self.redis.xtrim(part.journal(), minid=floor, approximate=False)  # "~" trims at most 10K a call

    def _trim_inbox_if_due(self) -> None:
        """Drop inbox entries whose effects are posted: at once after a submission (it holds the
        jobs' environments, which belong in their :env keys alone), else now and then."""
        if self._submissions_in_inbox or self._inbox_trims.due():
            inbox.trim(self.redis, self.inbox_cursor)
            self._submissions_in_inbox = False
            self._inbox_trims.mark()

    # -- purge
    def _purge_if_due(self) -> None:
        settings = self.settings
        if not (settings.purge_age_limit or settings.purge_num_limit) or not self._purges.due():
            return
        candidates = purge_candidates(
            self.redis, self.layout, settings.purge_age_limit or None, settings.purge_num_limit or None, self.clock()
        )
        if candidates:
            purged = self.purge(candidates)
            log.info("purged %d inactive jobs", len(purged))

    def purge(self, job_ids) -> list[int]:
        purged = purge_jobs(
            self.redis, self.layout, self.lease.token, self.settings.journal_maxlen, job_ids, self.clock()
        )
        self.history.forget(purged)
        return purged

    # -- restart
    def restore(self) -> int:
        """Rebuild the active jobs from Redis alone; returns how many.

        Each partition's inbox cursor says how far that partition has the inbox's effects. The
        inbox is read again from the lowest; an entry's effect on a job is skipped where the job's
        partition already has it (RequestHandler, `posted`), so a crash between two partitions'
        writes neither loses nor repeats an event."""
        parts = self.layout.partitions
        with self.redis.pipeline(transaction=False) as pipe:
            for part in parts:
                pipe.get(part.inbox_cursor())
                pipe.smembers(part.active_jobs())
            pipe.hget(keys.manager_resources(), "exec_backend")  # the last leader's
            *replies, previous = pipe.execute()
        self._previous_backend = previous.decode() if previous else ""
        cursors = [cursor.decode() if cursor else "0-0" for cursor in replies[::2]]
        self.inbox_cursor = min(cursors, key=stream_order)
        self.handler.posted_up_to = {part.index: cursor for part, cursor in zip(parts, cursors, strict=True)}
        job_ids = sorted(int(job_id) for members in replies[1::2] for job_id in members)
        for start in range(0, len(job_ids), RESTORE_CHUNK):
            self._renew()
            self._restore_chunk(job_ids[start : start + RESTORE_CHUNK])
        self.life.settle()
        self.flush()
        return len(job_ids)

    def _restore_chunk(self, job_ids: list[int]) -> None:
        pipe = self.redis.pipeline(transaction=False)
        for job_id in job_ids:
            part = self.layout.partition_of(job_id)
            pipe.xrange(part.job_eventlog(job_id))
            pipe.get(part.job_environment(job_id))
        replies = pipe.execute(raise_on_error=False)  # one job's wrong-type key fails that job alone
        for index, job_id in enumerate(job_ids):
            entries, environment = replies[2 * index], replies[2 * index + 1]
            if isinstance(entries, redis_lib.ResponseError):
                self._set_job_aside(job_id, f"its eventlog cannot be read: {entries}")
                continue
            fields = [fields for _, fields in entries]
            unreadable = isinstance(environment, redis_lib.ResponseError)
            try:
                job = restore_job(job_id, fields, None if unreadable else environment)
            except (CorruptEntry, ValueError, KeyError, IndexError) as err:
                log.error("job %d cannot be restored: %s", job_id, err)
                self.dead_letter("", {b"job": str(job_id).encode()}, f"unrestorable job: {err}")
                continue
            self.history.adopt(job_id, fields)
            self.life.adopt(job, self._previous_backend)
            if unreadable:
                self.life.raise_restart_exception(job, f"its environment cannot be read: {environment}")

    def dead_letter(self, entry_id: str, fields: dict, reason: str) -> None:
        set_aside(self.redis, keys.manager_inbox(), entry_id, reason, fields)


def _reply_key(request: messages.Request) -> str:
    """Where the request's sender waits: under its ACL user's name when it states one."""
    return keys.reply(request.reply_to, messages.reply_user(request.user))
