"""Job events (RFC 21 names and contexts) as a msgspec tagged union, and their stream form.

In a stream entry an event is three readable fields: `name`, `timestamp`, and `context`
(the event's other fields as JSON). `event_fields()` and `decode_event()` convert.
"""

from __future__ import annotations

import math
from typing import Any

import msgspec

from jobjournal.common.errors import CorruptEntry
from jobjournal.common.formats import EVENTLOG_VERSION


class Event(msgspec.Struct, tag_field="name", kw_only=True, omit_defaults=True, gc=False):
    """Base of every event; `name` is the tag. Not tracked by the garbage collector (a quarter
    off decoding an eventlog): events hold plain values and never take part in a cycle."""

    timestamp: float


class Submit(Event, tag="submit"):
    userid: int
    urgency: int
    flags: int = 0
    version: int = EVENTLOG_VERSION


class Validate(Event, tag="validate"):
    pass


class Invalidate(Event, tag="invalidate"):
    note: str = ""


class Depend(Event, tag="depend"):
    pass


class Priority(Event, tag="priority"):
    priority: int


class Urgency(Event, tag="urgency"):
    userid: int
    urgency: int


class Alloc(Event, tag="alloc"):
    pass


class Start(Event, tag="start"):
    pass


class Finish(Event, tag="finish"):
    status: int
    """Wait status, as from waitpid(2): exit code << 8, or the signal number."""


class Release(Event, tag="release"):
    ranks: str = "all"
    final: bool = True


class Free(Event, tag="free"):
    pass


class Clean(Event, tag="clean"):
    pass


class Exception_(Event, tag="exception"):
    type: str
    severity: int
    note: str = ""
    userid: int = -1


class Memo(Event, tag="memo"):
    data: dict[str, Any] = {}


class Restart(Event, tag="restart"):
    """Posted to SCHED jobs when a restarted manager takes them back to PRIORITY."""


AnyEvent = (
    Submit | Validate | Invalidate | Depend | Priority | Urgency | Alloc | Start | Finish
    | Release | Free | Clean | Exception_ | Memo | Restart
)
EVENT_NAMES = frozenset(cls.__struct_config__.tag for cls in AnyEvent.__args__)

_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(AnyEvent)


def event_name(event: Event) -> str:
    return event.__struct_config__.tag


def event_context(event: Event) -> bytes:
    """The event's context as JSON: its fields other than name and timestamp (those at their
    default left out, but for _ALWAYS)."""
    plan = _context_plans.get(type(event))
    if plan is None:
        plan = _context_plan(type(event))
    if not plan:
        return b"{}"
    return _encoder.encode(
        {name: value for name, default in plan if (value := getattr(event, name)) != default or name in _ALWAYS}
    )


def event_fields(event: Event) -> dict[str, bytes | str]:
    """The stream entry fields of an event."""
    return {
        "name": event_name(event),
        "timestamp": repr(event.timestamp),
        "context": event_context(event),
    }


def decode_event(name: bytes | str, timestamp: bytes | str | float, context: bytes | str) -> AnyEvent:
    """Rebuild an event from its stream fields; CorruptEntry if they do not form one.

    The fields are spliced into one JSON document and decoded in a single call (the fast
    path); a context that tries to override the name or timestamp is refused.
    """
    try:
        name = name.decode() if isinstance(name, bytes) else name
    except UnicodeDecodeError as err:
        raise CorruptEntry(f"event {name!r}: the name is not UTF-8") from err
    try:
        seconds = float(timestamp)
    except (ValueError, TypeError) as err:
        raise CorruptEntry(f"event {name!r}: bad timestamp {timestamp!r}") from err
    if not math.isfinite(seconds):
        raise CorruptEntry(f"event {name!r}: bad timestamp {timestamp!r}")
    body = (context.encode() if isinstance(context, str) else context).strip()
    if not body.startswith(b"{") or not body.endswith(b"}"):
        raise CorruptEntry(f"event {name!r}: context is not a JSON object")
    inner = body[1:-1].strip()
    document = b'{"name":%s,"timestamp":%s%s%s}' % (
        _encoder.encode(name),
        repr(seconds).encode(),
        b"," if inner else b"",
        inner,
    )
    try:
        event = _decoder.decode(document)
    except (msgspec.ValidationError, msgspec.DecodeError, UnicodeDecodeError) as err:
        raise CorruptEntry(f"event {name!r}: {err}") from err
    if event.timestamp != seconds or event_name(event) != name:
        raise CorruptEntry(f"event {name!r}: its context overrides the name or timestamp")
    return event


def entry_attachments(fields: dict[bytes, bytes]) -> tuple[bytes | None, bytes | None]:
    """(redacted jobspec, R) that an eventlog or journal entry carries, each None if absent.

    Format 2 keeps them in the `data` field of the submit and alloc entries (every entry has a
    `data` field, so all share one set of field names); format 1 had `jobspec` and `R` fields."""
    data = fields.get(b"data")
    if data is None:  # format 1
        return fields.get(b"jobspec") or None, fields.get(b"R") or None
    name = fields.get(b"name")
    if name == b"submit":
        return data or None, None
    if name == b"alloc":
        return None, data or None
    return None, None


def eventlog_attachments(entries) -> tuple[bytes | None, bytes | None]:
    """(redacted jobspec, R) of a whole eventlog (its entries' fields), each None if absent."""
    jobspec = r = None
    for fields in entries:
        carried_jobspec, carried_r = entry_attachments(fields)
        jobspec, r = carried_jobspec or jobspec, carried_r or r
    return jobspec, r


def decode_entry(fields: dict) -> AnyEvent:
    """Decode an eventlog or journal entry's fields (bytes or str keys)."""
    get = _getter(fields)
    try:
        return decode_event(get("name"), get("timestamp"), get("context"))
    except KeyError as err:
        raise CorruptEntry(f"entry lacks field {err}") from err


def _getter(fields: dict):
    if fields and isinstance(next(iter(fields)), bytes):
        return lambda key: fields[key.encode()]
    return lambda key: fields[key]


_MISSING = object()
_ALWAYS = frozenset({"version"})
"""Context fields written even at their default, so every eventlog states its format."""
_context_plans: dict[type, tuple[tuple[str, Any], ...]] = {}
"""Per event class: its context fields in order, each with its default (_MISSING: none)."""


def _context_plan(cls: type) -> tuple[tuple[str, Any], ...]:
    """The class's context fields and their defaults (factories called once), cached."""
    plan = []
    for field in msgspec.structs.fields(cls):
        if field.name == "timestamp":
            continue
        if field.default is not msgspec.NODEFAULT:
            plan.append((field.name, field.default))
        elif field.default_factory is not msgspec.NODEFAULT:
            plan.append((field.name, field.default_factory()))
        else:
            plan.append((field.name, _MISSING))
    _context_plans[cls] = tuple(plan)
    return _context_plans[cls]
