"""Same-run references for `make bench` (issue 17): what the store's own Redis and one client do
with no jobjournal logic in the way, measured in the same run as the figures they calibrate.

- `read_floor`: the cold rebuild's floor. A full journal requested from the manager the way a
  rebuilding lister asks for it (as a consumer of its own), every reply entry read with the
  lister's reader (common/reply_reader.py) and decoded with the same msgspec decoders (the reply's
  jobs and events, each jobspec and R), then discarded: no deriving, no writing.
- `write_floor`: end to end's floor. The Redis writes the design makes for each job (10 eventlog
  and 10 journal entries shaped as a real job's, the job sets, the view's document, sorted sets and
  counters), sent from one client, packed by hand and pipelined about 1000 commands a round trip,
  into keys under `bench:floor:` (deleted after): no manager or lister logic, no Lua, no rq.
"""

from __future__ import annotations

import statistics
import time

import msgspec

from bench.cpu import Meter, added, spent
from bench.figures import USERS
from bench.system import System, wait_until
from jobjournal.common.consumers import forget_consumer, new_consumer_name
from jobjournal.common.formats import JOURNAL_VERSION
from jobjournal.common.full_journal import request_full_journal
from jobjournal.common.keys import LEGACY
from jobjournal.common.packed import execute_packed, pack
from jobjournal.common.reply_format import BacklogJob, Sentinel
from jobjournal.common.reply_reader import ReplyReader
from jobjournal.common.resources import decode_R
from jobjournal.lister.model import JobView, decode_jobspec, member
from jobjournal.lister.view import counters, memberships

STALL_S = 60.0
FLOOR_PREFIX = "bench:floor:"
PIPELINE_COMMANDS = 1000
FLOOR_MAX_JOBS = 100_000
"""The write floor writes at most this many jobs (it is a rate; its keys take memory meanwhile)."""


# -- the read floor
def read_floor(system: System, runs: int = 3, meter: Meter | None = None) -> dict:
    """Seconds from the request to the sentinel decoded (the median of `runs`, each on a quiet
    Redis), with what the reply held; `reread_s`: reading and decoding the same reply again once
    it is all written (the manager's writing out of the way); `cpu_s`: CPU seconds per process,
    summed over the runs."""
    redis = system.redis
    samples, cpu, reread, reply = [], {}, 0.0, {}
    for run in range(runs):
        wait_until(system.quiet, 120, "Redis to be quiet", 0.05)
        consumer = f"bench-floor-{new_consumer_name()}"
        before = meter.sample() if meter else {}
        started = time.monotonic()
        request_full_journal(redis, consumer, [LEGACY])
        jobs = _read_and_decode(system, consumer)
        samples.append(round(time.monotonic() - started, 3))
        if meter:
            cpu = added(cpu, spent(before, meter.sample()))
        try:
            if run == runs - 1:
                started = time.monotonic()
                _read_and_decode(system, consumer)
                reread = round(time.monotonic() - started, 3)
                reply = {"jobs": jobs, **_reply_size(redis, LEGACY.journal_reply(consumer))}
        finally:
            redis.unlink(LEGACY.journal_reply(consumer), LEGACY.journal_reply_claims(consumer))
            forget_consumer(redis, LEGACY, consumer)
    return {"seconds": statistics.median(samples), "samples": samples, "reread_s": reread, **reply,
            "cpu_s": cpu, "runs": runs}


def _read_and_decode(system: System, consumer: str) -> int:
    """Read the reply to `consumer` up to its sentinel, decoding each job as a rebuild does; the jobs read."""
    jobs, progress = 0, time.monotonic()
    with ReplyReader(system.redis, LEGACY, consumer) as reader:
        while True:
            items = reader.next_batch()
            if items:
                progress = time.monotonic()
            elif time.monotonic() - progress > STALL_S:
                raise RuntimeError(f"the full journal for {consumer} stalled")
            for item in items:
                if isinstance(item, Sentinel):
                    return jobs
                if isinstance(item, BacklogJob):
                    jobs += 1
                    if item.jobspec:
                        decode_jobspec(bytes(item.jobspec))  # as lister.model.view_from_events does
                    if item.R:
                        decode_R(item.R)


def _reply_size(redis, key: str) -> dict:
    """The reply's entries and the bytes of their field names and values (as XRANGE returns them)."""
    entries, size, after = 0, 0, "-"
    while True:
        page = redis.xrange(key, after, "+", count=20)
        if not page:
            return {"reply_entries": entries, "reply_bytes": size}
        for entry_id, fields in page:
            entries += 1
            size += sum(len(name) + len(value) for name, value in fields.items())
            after = "(" + entry_id.decode()
        if len(page) < 20:
            return {"reply_entries": entries, "reply_bytes": size}


# -- the write floor
class _Template(msgspec.Struct):
    """A real job's writes: its eventlog entries' fields (flat), its view document, and per userid
    the sorted sets it is in (scratch key, score); the counters it adds one to."""

    entries: list[list]
    doc: bytes
    lists: dict[int, list[tuple[str, float]]]
    counters: list[str]


def scratch(key: str) -> str:
    """The floor's twin of a jobjournal key: `jj:...` -> `bench:floor:...`."""
    return FLOOR_PREFIX + key.split(":", 1)[1]


def write_floor(system: System, jobs: int, meter: Meter | None = None) -> dict:
    """Jobs per second of the design's writes for `jobs` jobs (at most FLOOR_MAX_JOBS), from one
    client; `cpu_s` per process over the writing (not the deleting after)."""
    jobs = min(jobs, FLOOR_MAX_JOBS)
    writer = _Writer(system, _templates(system))
    wave = max(1, PIPELINE_COMMANDS // writer.commands_per_job())
    wait_until(system.quiet, 120, "Redis to be quiet", 0.05)
    before = meter.sample() if meter else {}
    started = time.monotonic()
    try:
        _send_all(system, (writer.wave(range(start, min(jobs, start + wave))) for start in range(0, jobs, wave)))
        seconds = time.monotonic() - started
        cpu = spent(before, meter.sample()) if meter else {}
    finally:
        _delete(system, writer.base_id, jobs)
    return {"jobs_per_s": round(jobs / seconds, 1), "jobs": jobs, "seconds": round(seconds, 3),
            "commands_per_job": round(writer.commands / jobs, 2), "jobs_per_round_trip": wave, "cpu_s": cpu}


def _send_all(system: System, waves, ahead: int = 2) -> None:
    """Send each wave of packed commands on one connection, `ahead` waves in flight: Redis has the
    next wave while the client reads a wave's replies and packs the one after (an error reply raises)."""
    connection = system.redis.connection_pool.get_connection()
    due: list[int] = []
    try:
        for batch in waves:
            connection.send_packed_command([b"".join(batch)])
            due.append(len(batch))
            if len(due) > ahead:
                for _ in range(due.pop(0)):
                    connection.read_response()  # an error reply raises ResponseError
        for count in due:
            for _ in range(count):
                connection.read_response()
    except BaseException:
        connection.disconnect()
        raise
    finally:
        system.redis.connection_pool.release(connection)


def _templates(system: System) -> list[_Template]:
    """A completed job's and a failed one's writes, read from the store (among the newest inactive jobs)."""
    redis = system.redis
    generation = int(redis.get(LEGACY.view_current()))
    found: dict[bool, _Template] = {}
    for job_id in redis.zrange(LEGACY.inactive_jobs(), -500, -1):
        doc = redis.hget(LEGACY.view_jobs(generation), job_id)
        view = JobView.from_json(doc)
        failed = view.result == "FAILED"
        if failed in found:
            continue
        entries = [[field for pair in fields.items() for field in pair]
                   for _, fields in redis.xrange(LEGACY.job_eventlog(int(job_id)))]
        lists = {user: [(scratch(key), score) for key, score in _lists(generation, view, user)] for user in USERS}
        found[failed] = _Template(entries, doc, lists, counters(view))
        if len(found) == 2:
            return [found[False], found[True]]
    raise RuntimeError("no completed and failed job among the newest 500 inactive")


def _lists(generation: int, view: JobView, userid: int):
    """The sorted sets (key, score) the job would be in as `userid`'s."""
    return memberships(LEGACY, generation, msgspec.structs.replace(view, userid=userid)).items()


class _Writer:
    """Packs the floor's commands, wave by wave: job ids from 10**18, entry ids `<ms>-<seq>`
    increasing in the order written, the eventlog entry under its journal entry's id."""

    def __init__(self, system: System, templates: list[_Template]):
        self.templates = templates
        self.maxlen = system.settings.journal_maxlen
        self.generation = int(system.redis.get(LEGACY.view_current()))
        self.base_id, self.ms, self.seq = 10**18, int(time.time() * 1000), 0
        self.commands = 0

    def commands_per_job(self) -> int:
        events = len(self.templates[0].entries)
        return 2 * events + 3 + 1 + len(self.templates[0].lists[USERS[0]])

    def wave(self, indexes: range) -> list[bytes]:
        """The packed commands of jobs `indexes` (the ith fails if i % 10 == 0, as in the main
        scenario): event by event across the wave (the manager posts a request's jobs together),
        the journal head, then the view's writes: a document and its sorted sets per job, the
        users and the counters once a wave (as a lister batch), the view's cursor."""
        jobs = [(self.base_id + i, self.templates[i % 10 == 0], USERS[i % len(USERS)], i) for i in indexes]
        journal, active, inactive = (scratch(key) for key in (LEGACY.journal(), LEGACY.active_jobs(),
                                                              LEGACY.inactive_jobs()))
        trim = ("MAXLEN", "~", self.maxlen) if self.maxlen else ()
        commands: list[tuple] = []
        for event in range(max(len(template.entries) for _, template, _, _ in jobs)):
            for job_id, template, _, _ in jobs:
                if event >= len(template.entries):
                    continue
                fields = template.entries[event]
                self.seq += 1
                entry = f"{self.ms}-{self.seq}"
                commands.append(("XADD", journal, *trim, entry, "v", JOURNAL_VERSION, "seq", self.seq, "id", job_id,
                                 *fields))
                commands.append(("XADD", scratch(LEGACY.job_eventlog(job_id)), entry, *fields))
                name = fields[fields.index(b"name") + 1]
                if name == b"submit":
                    commands.append(("SADD", active, job_id))
                elif name == b"clean":
                    commands.append(("SREM", active, job_id))
                    commands.append(("ZADD", inactive, fields[fields.index(b"timestamp") + 1], job_id))
        cursor = f"{self.ms}-{self.seq}"
        commands.append(("HSET", scratch(LEGACY.journal_head()), "seq", self.seq, "last_id", cursor))
        g, counts = self.generation, {}
        for job_id, template, user, index in jobs:
            commands.append(("HSET", scratch(LEGACY.view_jobs(g)), job_id, template.doc))
            for key, score in template.lists[user]:
                commands.append(("ZADD", key, repr(score + index * 1e-3), member(job_id)))
            for counter in template.counters:
                counts[counter] = counts.get(counter, 0) + 1
        commands.append(("SADD", scratch(LEGACY.view_users(g)), *sorted({user for _, _, user, _ in jobs})))
        commands += [("HINCRBY", scratch(LEGACY.view_stats(g)), counter, n) for counter, n in counts.items()]
        commands.append(("HSET", scratch(LEGACY.view_meta(g)), "seq", self.seq, "cursor", cursor))
        self.commands += len(commands)
        return [pack(command) for command in commands]


def _delete(system: System, base_id: int, jobs: int) -> None:
    """UNLINK every key the floor wrote; wait until Redis has freed them."""
    redis = system.redis
    for start in range(0, jobs, PIPELINE_COMMANDS):
        names = [scratch(LEGACY.job_eventlog(base_id + i)) for i in range(start, min(jobs, start + PIPELINE_COMMANDS))]
        execute_packed(redis, [pack(("UNLINK", *names))])
    rest = list(redis.scan_iter(match=FLOOR_PREFIX + "*", count=10_000))
    if rest:
        redis.unlink(*rest)
    wait_until(system.quiet, 300, "Redis to free the floor's keys", 0.05)
