"""Queries, read straight from the view in Redis by any process (no worker round trip).

A query resolves the current generation once; if a generation switch happens while it
reads, it starts over, so no answer mixes two generations. While no view is complete yet
(the first build), a query waits, and past its timeout says how far the build has got.
"""

from __future__ import annotations

import itertools
import time

import msgspec

from jobjournal.common import keys
from jobjournal.common.errors import NoSuchJob
from jobjournal.common.ids import f58
from jobjournal.common.keys import INDEXED_RESULTS, LIST_STATES, VIEW_LISTS, Partition
from jobjournal.common.layout import Layout, read_layout
from jobjournal.common.packed import pairs, reads
from jobjournal.common.states import Result, State
from jobjournal.lister.constraints import compile_constraint, parse_results, parse_states
from jobjournal.lister.errors import QueryError, ViewNotReady
from jobjournal.lister.merge import Member, Merge, Read, SortedWalk
from jobjournal.lister.model import ATTRIBUTES, JobView

DEFAULT_TIMEOUT = 30.0
DEFAULT_MAX_WORK = 200_000
PAGE = 500
POLL = 0.02
DEFAULT_ATTRS = ("id", "userid", "state", "result", "name", "t_submit")


class ListQuery(msgspec.Struct, kw_only=True):
    """What `list_jobs` returns: see each field. Empty filters match everything."""

    max_entries: int = 0
    """0: all."""
    attrs: list[str] = msgspec.field(default_factory=lambda: list(DEFAULT_ATTRS))
    """Attribute names, or ["all"]."""
    userid: int | None = None
    """Only this user's jobs; None: every user's."""
    states: list[str] = []
    """State names or groups (pending, running, inactive); OR-ed with `results`."""
    results: list[str] = []
    name: str | None = None
    queue: str | None = None
    since: float = 0.0
    """Inactive jobs only if t_inactive is strictly after this time (active jobs are all listed:
    Flux's `--since`, jobs active since then)."""
    constraint: dict | None = None
    max_work: int = DEFAULT_MAX_WORK
    """The most jobs one query may examine before it gives up with an error."""
    after: tuple[str, float, int] | None = None
    """Resume after this job: (its list, its score in it, its id), as `list_page` gives the next
    page's (None: from the start)."""


def list_attrs() -> list[str]:
    return list(ATTRIBUTES)


def sample_row() -> dict:
    """A row as `list_jobs` returns it with every attribute, every time set (an inactive job's), e.g.
    to check a format."""
    times = {name: 1.0 for name in ATTRIBUTES if name.startswith("t_") or name == "expiration"}
    return _row(JobView(id=1, state="INACTIVE", result="COMPLETED", **times), ATTRIBUTES)


def current_generations(redis, parts: list[Partition], timeout: float = DEFAULT_TIMEOUT) -> dict[Partition, int]:
    """The generation to read of each partition's view; waits while a partition's first view is
    still being built."""
    deadline = time.monotonic() + timeout
    while True:
        found = reads(redis, [("GET", part.view_current()) for part in parts])
        missing = [part for part, current in zip(parts, found, strict=True) if current is None]
        if not missing:
            return {part: int(current) for part, current in zip(parts, found, strict=True)}
        if time.monotonic() >= deadline:
            raise ViewNotReady(_not_ready_reason(redis, missing, timeout))
        time.sleep(POLL)


def _not_ready_reason(redis, missing: list[Partition], timeout: float) -> str:
    building = redis.hgetall(missing[0].view_building())
    which = "" if not missing[0].tag else f" of partition {missing[0].index} ({len(missing)} not ready)"
    if not building:
        return f"no job view{which} after {timeout:g}s: is `jobjournal lister` running?"
    jobs = int(building.get(b"jobs", 0))
    age = time.time() - float(building.get(b"started", time.time()))
    return f"the job view{which} is still initializing after {timeout:g}s: {jobs} jobs loaded in {age:.1f}s so far"


def _consistent(redis, parts: list[Partition], timeout: float, read, seen: dict | None = None):
    """Run read(generations) until no partition's generation switched and (for a few tries) no
    batch landed during it: an answer never mixes two generations of a partition, and rarely two
    batches. Across partitions it is a union of per-partition-consistent reads.

    `seen` (a caller's dict, kept across queries): the generations read last. The first try starts
    from them, saving the round trip that reads them; the closing check catches a switch (the try
    is then read again from the current ones). Updated with the generations answered from."""
    whole = None  # the last answer read from generations that all stayed in place
    for attempt in range(5):
        if attempt == 0 and seen is not None and all(part in seen for part in parts):
            generations = {part: seen[part] for part in parts}
        else:
            generations = current_generations(redis, parts, timeout)
        seqs = [("HGET", part.view_meta(generation), "seq") for part, generation in generations.items()]
        currents = [("GET", part.view_current()) for part in generations]
        reader = _Reader(redis, seqs, [command for pair in zip(currents, seqs, strict=True) for command in pair])
        answer = read(reader, generations)
        before, checks = reader.first(), reader.last()
        now_current, after = checks[::2], checks[1::2]
        if any(current != str(generation).encode() for current, generation in zip(now_current, generations.values(),
                                                                                 strict=True)):
            continue  # a generation was replaced (and is being deleted) while we read
        if seen is not None:
            seen.update(generations)
        whole = answer
        if attempt >= 2 or after == before:
            return answer
    if whole is None:
        raise QueryError("the view kept switching generations during the query; try again")
    return whole


class _Reader:
    """A query's reads (a `merge.Read`). Its first round trip also sends `first` (each partition's
    batch seq), and every round trip ends with `last` (the closing checks: each partition's current
    generation and seq, read on each node after the query's own reads there), so that neither costs
    a round trip of its own: the replies to the last round trip's `last` are the closing checks."""

    def __init__(self, redis, first: list[tuple], last: list[tuple]):
        self.redis = redis
        self._first, self._last = first, last
        self._first_replies: list | None = None
        self._last_replies: list = []

    def __call__(self, commands: list[tuple]) -> list:
        first = self._first if self._first_replies is None else []
        replies = reads(self.redis, first + commands + self._last)
        if first:
            self._first_replies = replies[: len(first)]
        self._last_replies = replies[len(replies) - len(self._last):]
        return replies[len(first): len(replies) - len(self._last)]

    def first(self) -> list:
        """The replies to `first` (read now if the query read nothing)."""
        if self._first_replies is None:
            self([])
        return self._first_replies

    def last(self) -> list:
        """The replies to `last` sent with the latest round trip."""
        self.first()  # a query that read nothing reads both now
        return self._last_replies


def list_jobs(
    redis, query: ListQuery, timeout: float = DEFAULT_TIMEOUT, layout: Layout | None = None, seen: dict | None = None
) -> list[dict]:
    """Jobs matching the query: pending (priority order), then running, then inactive (newest first),
    merged over every partition. A caller that queries often passes the store's `layout` (it never
    changes once recorded) and a `seen` dict it keeps (`_consistent`), each saving a round trip."""
    plan = _Plan(query)
    parts = (layout or read_layout(redis)).partitions
    return _consistent(redis, parts, timeout, plan.run, seen)


def list_page(
    redis, query: ListQuery, timeout: float = DEFAULT_TIMEOUT, layout: Layout | None = None
) -> tuple[list[dict], tuple[str, float, int] | None]:
    """A page of `list_jobs` (`query.max_entries` jobs, after `query.after`), and where the next
    page starts (None: this was the last). A job that moves between lists meanwhile may be listed
    on two pages, or on none."""
    if query.max_entries < 1:
        raise QueryError("a page needs max_entries of 1 or more")
    plan = _Plan(query)
    parts = (layout or read_layout(redis)).partitions
    rows = _consistent(redis, parts, timeout, plan.run)
    last = plan.last
    full = len(rows) >= query.max_entries and last is not None
    return rows, ((last.list_name, last.list_score, last.id) if full else None)


def list_id(
    redis, job_id: int, attrs=("all",), wait_state: str | None = None, timeout: float = DEFAULT_TIMEOUT,
    layout: Layout | None = None,
) -> dict:
    """One job's attributes (from its partition alone); with `wait_state`, once it reaches that
    state (or becomes inactive)."""
    names = _attr_names(attrs)
    wanted = parse_states([wait_state]) if wait_state else None
    part = (layout or read_layout(redis)).partition_of(job_id)
    deadline = time.monotonic() + timeout
    while True:
        view = _consistent(redis, [part], timeout, lambda read, gens: _job(read, part, gens[part], job_id))
        if view is None:
            raise NoSuchJob(f"no such job: {f58(job_id)}")
        if wanted is None or _reached(view, wanted):
            return _row(view, names)
        if time.monotonic() >= deadline:
            raise QueryError(f"job {f58(job_id)} did not reach {wait_state} within {timeout:g}s (state {view.state})")
        time.sleep(POLL)


def stats(redis, timeout: float = DEFAULT_TIMEOUT, layout: Layout | None = None, seen: dict | None = None) -> dict:
    """Counts per state and result, inactive purged, and the same per queue: every partition's summed."""
    parts = (layout or read_layout(redis)).partitions

    def read(reader: Read, generations: dict[Partition, int]) -> list:
        return reader([("HGETALL", part.view_stats(generation)) for part, generation in generations.items()])

    counts: dict[str, int] = {}
    for raw in _consistent(redis, parts, timeout, read, seen):
        for key, value in pairs(raw):
            counts[key.decode()] = counts.get(key.decode(), 0) + int(value)
    return _shape_stats(counts)


# -- internals
def _attr_names(attrs) -> tuple[str, ...] | list[str]:
    attrs = list(attrs)
    if attrs == ["all"]:
        return ATTRIBUTES
    unknown = [name for name in attrs if name not in ATTRIBUTES]
    if unknown:
        raise QueryError(f"unknown attribute {unknown[0]!r} (see list-attrs)")
    return ["id", *[name for name in attrs if name != "id"]]


def _job(read: Read, part: Partition, generation: int, job_id: int) -> JobView | None:
    (data,) = read([("HGET", part.view_jobs(generation), job_id)])
    return JobView.from_json(data) if data else None


def _reached(view: JobView, wanted: State) -> bool:
    state = State[view.state]
    return state == State.INACTIVE or state >= _lowest(wanted)


def _lowest(mask: State) -> State:
    return min(state for state in State if state & mask)


def _row(view: JobView, names: tuple[str, ...] | list[str]) -> dict:
    if names is ATTRIBUTES:  # every attribute, in the struct's order (id first), at C speed
        return msgspec.structs.asdict(view)
    return {name: getattr(view, name) for name in names}


class _Plan:
    """How to answer a list query: which sorted sets to walk, and what to check per job."""

    def __init__(self, query: ListQuery):
        if query.max_entries < 0 or query.max_work < 1:
            raise QueryError("max_entries must be >= 0 and max_work >= 1")
        self.query = query
        self.names = _attr_names(query.attrs)
        self.states = parse_states(query.states) if query.states else None
        self.results = parse_results(query.results) if query.results else None
        self.constraint = compile_constraint(query.constraint) if query.constraint is not None else None
        if query.after is not None and query.after[0] not in VIEW_LISTS:
            raise QueryError(f"a page cursor names no list {query.after[0]!r}")
        self.last: JobView | None = None
        """The last job listed (its list and score start the next page)."""

    def run(self, read: Read, generations: dict[Partition, int]) -> list[dict]:
        self.last = None
        rows: list[dict] = []
        seen: set[int] = set()
        examined = 0
        limit = self.query.max_entries or None
        for views in self._pages(read, generations):
            examined += len(views)
            if examined > self.query.max_work:
                raise QueryError(
                    f"query examined more than {self.query.max_work} jobs; narrow it "
                    "(user, states, since, max entries) or raise max_work"
                )
            for view in views:
                if view.id not in seen and self._matches(view):
                    seen.add(view.id)  # a job moving between lists mid-query is listed once
                    rows.append(_row(view, self.names))
                    if limit and len(rows) == limit:
                        self.last = view
                        return rows
        return rows

    def _lists(self) -> list[str]:
        if self.states is None and self.results is None:
            wanted = set(VIEW_LISTS)
        else:
            wanted = {name for name in VIEW_LISTS if self.states and self.states & LIST_STATES[name]}
            if self.results:
                wanted.add("inactive")
        names = [name for name in VIEW_LISTS if name in wanted]
        if self.query.after is not None:  # a later page: from the cursor's list on
            names = [name for name in names if VIEW_LISTS.index(name) >= VIEW_LISTS.index(self.query.after[0])]
        return names

    def _source(self, part: Partition, generation: int, list_name: str) -> str:
        query = self.query
        indexed = self.results and len(self.results) == 1 and self.results <= INDEXED_RESULTS
        if list_name == "inactive" and indexed and self.states is None and query.userid is None:
            return part.view_result_list(generation, next(iter(self.results)))
        if query.userid is not None:
            return part.view_user_list(generation, query.userid, list_name)
        return part.view_list(generation, list_name)

    def _pages(self, read: Read, generations: dict[Partition, int]):
        """The lists' jobs, list after list, each merged over the partitions in the list's order, a
        page of views at a time. The first pages of every list are read in one round trip."""
        size = min(PAGE, max(self.query.max_entries, 50)) if self.query.max_entries else PAGE
        merges = [self._merge(generations, list_name, size) for list_name in self._lists()]
        commands = [merge.first_commands() for merge in merges]
        replies = read([command for first in commands for command in first])
        for merge, first in zip(merges, commands, strict=True):
            members = merge.members(read, replies[: len(first)])
            replies = replies[len(first):]
            while page := list(itertools.islice(members, size)):
                yield _views(read, generations, page)

    def _merge(self, generations: dict[Partition, int], list_name: str, size: int) -> Merge:
        above = self.query.since if list_name == "inactive" and self.query.since else None
        cursor = self.query.after
        after = (cursor[1], cursor[2]) if cursor is not None and cursor[0] == list_name else None
        return Merge([SortedWalk(part, self._source(part, generation, list_name), list_name != "pending", above, after)
                      for part, generation in generations.items()], size)

    def _matches(self, view: JobView) -> bool:
        query = self.query
        if query.userid is not None and view.userid != query.userid:
            return False
        if self.states is not None or self.results is not None:
            in_state = self.states is not None and bool(State[view.state] & self.states)
            in_result = self.results is not None and view.result in self.results
            if not (in_state or in_result):
                return False
        if query.name is not None and view.name != query.name:
            return False
        if query.queue is not None and view.queue != query.queue:
            return False
        return self.constraint is None or self.constraint(view)


def _shape_stats(counts: dict[str, int]) -> dict:
    def block(queue: str | None) -> dict:
        states = {state.name: counts.get(keys.stat_state(state.name, queue), 0) for state in State}
        results = {result.name: counts.get(keys.stat_result(result.name, queue), 0) for result in Result}
        in_list = {name: sum(states[s.name] for s in State if s & mask) for name, mask in LIST_STATES.items()}
        return {
            "states": states,
            **in_list,
            "total": sum(states.values()),
            "successful": results["COMPLETED"],
            "failed": results["FAILED"],
            "canceled": results["CANCELED"],
            "timeout": results["TIMEOUT"],
        }

    queues = sorted({queue for field in counts if (queue := keys.stat_queue(field)) is not None})
    return {
        **block(None),
        "inactive_purged": counts.get(keys.STAT_PURGED, 0),
        "queues": {queue: block(queue) for queue in queues},
    }


def _views(read: Read, generations: dict[Partition, int], page: list[Member]) -> list[JobView]:
    """The stored views of a page of members, in the page's order (one round trip)."""
    by_part: dict[Partition, list[int]] = {}
    for part, job_member in page:
        by_part.setdefault(part, []).append(int(job_member))
    asked = list(by_part.items())
    found = {}
    replies = read([("HMGET", part.view_jobs(generations[part]), *job_ids) for part, job_ids in asked])
    for (part, job_ids), stored in zip(asked, replies, strict=True):
        found.update({(part, job_id): data for job_id, data in zip(job_ids, stored, strict=True)})
    documents = (found[(part, int(job_member))] for part, job_member in page)
    return [JobView.from_json(data) for data in documents if data]
