"""A job as the lister sees it: attributes derived from its events (RFC 21), and its hash form.

`JobView.apply(event)` is the one derivation used everywhere: live, from a full journal,
and by the naive walk over eventlogs. In Redis a view is one JSON document per job
(`to_json()`/`from_json()`), with attributes at their default left out.
"""

from __future__ import annotations

from functools import lru_cache

import msgspec

from jobjournal.common import events as ev
from jobjournal.common import jobspec as js
from jobjournal.common.jobspec import Jobspec
from jobjournal.common.keys import LIST_OF_STATE
from jobjournal.common.resources import R, decode_R
from jobjournal.common.states import State, next_state, result_of

_encoder = msgspec.json.Encoder()


class JobView(msgspec.Struct, kw_only=True, omit_defaults=True, gc=False):
    id: int
    userid: int = -1
    urgency: int = 16
    priority: int | None = None
    state: str = "NEW"
    result: str | None = None
    success: bool | None = None
    name: str = ""
    queue: str = "default"
    cwd: str = ""
    ntasks: int = 1
    nnodes: int | None = None
    ncores: int = 1
    duration: float = 0.0
    ranks: str | None = None
    nodelist: str | None = None
    expiration: float | None = None
    waitstatus: int | None = None
    exception_occurred: bool = False
    exception_type: str | None = None
    exception_severity: int | None = None
    exception_note: str | None = None
    t_submit: float = 0.0
    t_depend: float | None = None
    t_run: float | None = None
    t_cleanup: float | None = None
    t_inactive: float | None = None

    # -- derivation
    def apply(self, event: ev.Event) -> None:
        """Move the view by one event (RFC 21). Transitions come from common.states.next_state,
        tabulated once (TRANSITIONS) because this runs for every event of every job."""
        kind = type(event)
        before = self.state if self.userid >= 0 else None  # userid is set by submit
        if kind in _NOTED and self._note(kind, event):
            return
        after = TRANSITIONS.get((before, kind))
        if after is not None:
            self.state = after
            stamp = _TIMESTAMP_OF.get(after)
            if stamp is not None:
                setattr(self, stamp, event.timestamp)
                if after == "INACTIVE":
                    self._end()

    def _note(self, kind: type, event) -> bool:
        """Keep what the event says; True if it moves no job (a non-fatal exception)."""
        if kind is ev.Submit:
            self.userid, self.urgency, self.t_submit = event.userid, event.urgency, event.timestamp
        elif kind is ev.Priority:
            self.priority = event.priority
        elif kind is ev.Finish:
            self.waitstatus = event.status
        elif kind is ev.Urgency:
            self.urgency = event.urgency
        else:
            self._note_exception(event)
            return event.severity != 0
        return False

    def _end(self) -> None:
        fatal = self.exception_type if self.exception_severity == 0 else None
        exception = ev.Exception_(timestamp=0, type=fatal, severity=0) if fatal else None
        self.result = result_of(self.waitstatus, exception).name
        self.success = self.result == "COMPLETED"

    def _note_exception(self, event: ev.Exception_) -> None:
        if self.exception_occurred and event.severity >= self.exception_severity:
            return  # keep the first, most severe exception
        self.exception_occurred = True
        self.exception_type = event.type
        self.exception_severity = event.severity
        self.exception_note = event.note

    def set_jobspec(self, jobspec: Jobspec) -> None:
        self.name = jobspec.job_name
        self.queue = jobspec.queue
        self.cwd = jobspec.cwd
        self.ntasks = jobspec.ntasks
        self.nnodes = jobspec.nodes if self.ranks is None else self.nnodes
        self.ncores = jobspec.ncores if self.ranks is None else self.ncores
        self.duration = jobspec.duration or self.duration  # keep the default itself: omit_defaults
        # compares floats by identity, and a stored 0.0 would cost every document 15 bytes

    def set_R(self, r: R) -> None:
        self.ranks, self.nnodes = r.rank_idset
        self.ncores = r.ncores
        self.nodelist = ",".join(r.execution.nodelist)
        self.expiration = r.execution.expiration or None

    # -- where the job belongs
    @property
    def list_name(self) -> str:
        """Which list the job is on: 'pending', 'running' or 'inactive'."""
        return LIST_OF_STATE[self.state]

    @property
    def list_score(self) -> float:
        match self.list_name:
            case "pending":
                return -float(self.priority if self.priority is not None else self.urgency)
            case "running":
                return self.t_run or self.t_submit
            case _:
                return self.t_inactive or 0.0

    # -- the stored form: one JSON document per job (defaults left out), readable with GET
    def to_json(self) -> bytes:
        return _encoder.encode(self)

    @classmethod
    def from_json(cls, data: bytes) -> JobView:
        return _view_decoder.decode(data)


def _transitions() -> dict[tuple[str | None, type], str]:
    """(state name or None, event class) -> the state name it moves to, where it moves."""
    samples = {
        cls: cls(timestamp=0, **{name: 0 for name in cls.__struct_fields__ if name not in ("timestamp",)
                                 and name not in _defaults_of(cls)})
        for cls in ev.AnyEvent.__args__
    }
    table = {}
    for before in [None, *State]:
        for cls, sample in samples.items():
            if cls is ev.Exception_:
                sample = ev.Exception_(timestamp=0, type="x", severity=0)
            after = next_state(before, sample)
            if after is not None and after != before:
                table[(before.name if before else None, cls)] = after.name
    return table


def _defaults_of(cls) -> set[str]:
    return {field.name for field in msgspec.structs.fields(cls) if field.required is False}


TRANSITIONS = _transitions()
_NOTED = frozenset({ev.Submit, ev.Priority, ev.Finish, ev.Urgency, ev.Exception_})
"""Events whose fields the view keeps."""
_TIMESTAMP_OF = {"DEPEND": "t_depend", "RUN": "t_run", "CLEANUP": "t_cleanup", "INACTIVE": "t_inactive"}
ATTRIBUTES = tuple(JobView.__struct_fields__)
_view_decoder = msgspec.json.Decoder(JobView)


def member(job_id: int) -> str:
    """A job's sorted-set member: the id, zero-padded so ties sort by id."""
    return f"{job_id:020d}"


def view_from_events(job_id: int, events, jobspec, r) -> JobView:
    """Derive a job's view from its whole eventlog (and redacted jobspec and R as JSON bytes or
    msgspec.Raw, if known: empty or None if not)."""
    view = JobView(id=job_id)
    if jobspec:
        view.set_jobspec(decode_jobspec(bytes(jobspec)))
    apply, allocated = view.apply, False
    for event in events:
        apply(event)
        allocated = allocated or type(event) is ev.Alloc
    if allocated and r:
        view.set_R(decode_R(r))
    return view


@lru_cache(maxsize=1024)
def decode_jobspec(data: bytes) -> Jobspec:
    """A redacted jobspec (remembered: jobs of one array share theirs). Treat it as read-only."""
    return js.decode_jobspec(data)

