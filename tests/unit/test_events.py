"""Events in their stream form: name, timestamp and context fields, and back."""

from __future__ import annotations

import json

import pytest

from jobjournal.common import events as ev
from jobjournal.common.errors import CorruptEntry

T = 1_750_000_000.123456

EVERY_EVENT = [
    ev.Submit(timestamp=T, userid=1000, urgency=16),
    ev.Submit(timestamp=T, userid=0, urgency=0, flags=4, version=2),
    ev.Validate(timestamp=T),
    ev.Invalidate(timestamp=T),
    ev.Invalidate(timestamp=T, note="bad jobspec"),
    ev.Depend(timestamp=T),
    ev.Priority(timestamp=T, priority=4294967295),
    ev.Urgency(timestamp=T, userid=1000, urgency=31),
    ev.Alloc(timestamp=T),
    ev.Start(timestamp=T),
    ev.Finish(timestamp=T, status=3 << 8),
    ev.Release(timestamp=T),
    ev.Release(timestamp=T, ranks="0-3,7", final=False),
    ev.Free(timestamp=T),
    ev.Clean(timestamp=T),
    ev.Exception_(timestamp=T, type="cancel", severity=0),
    ev.Exception_(timestamp=T, type="timeout", severity=1, note="é ☃ \"quoted\"", userid=42),
    ev.Memo(timestamp=T),
    ev.Memo(timestamp=T, data={"nested": {"list": [1, 2.5, None, True]}}),
    ev.Restart(timestamp=T),
]


def _id(event: ev.Event) -> str:
    return ev.event_name(event)


def test_every_event_type_is_covered_here():
    assert {ev.event_name(event) for event in EVERY_EVENT} == ev.EVENT_NAMES


@pytest.mark.parametrize("event", EVERY_EVENT, ids=_id)
def test_an_event_survives_its_stream_fields(event):
    fields = ev.event_fields(event)
    assert set(fields) == {"name", "timestamp", "context"}
    assert ev.decode_event(fields["name"], fields["timestamp"], fields["context"]) == event


@pytest.mark.parametrize("event", EVERY_EVENT, ids=_id)
def test_an_entry_with_str_keys_decodes(event):
    assert ev.decode_entry(ev.event_fields(event)) == event


@pytest.mark.parametrize("event", EVERY_EVENT, ids=_id)
def test_an_entry_with_bytes_keys_and_values_decodes(event):
    as_redis_returns_it = {
        key.encode(): value if isinstance(value, bytes) else value.encode()
        for key, value in ev.event_fields(event).items()
    }
    assert ev.decode_entry(as_redis_returns_it) == event


@pytest.mark.parametrize("event", EVERY_EVENT, ids=_id)
def test_the_stream_fields_are_readable_json_and_text(event):
    fields = ev.event_fields(event)
    assert fields["name"] == ev.event_name(event)
    assert float(fields["timestamp"]) == event.timestamp
    context = json.loads(fields["context"])
    assert isinstance(context, dict)
    assert "name" not in context and "timestamp" not in context


@pytest.mark.parametrize(
    "timestamp", [0.0, 1e-7, 1_750_000_000.1, 1_750_000_000.987654321, 2**40 + 0.5]
)
def test_the_timestamp_round_trips_exactly(timestamp):
    event = ev.Validate(timestamp=timestamp)
    assert ev.decode_entry(ev.event_fields(event)).timestamp == timestamp


@pytest.mark.parametrize(
    ("event", "context"),
    [
        (ev.Invalidate(timestamp=T), {}),
        (ev.Release(timestamp=T), {}),
        (ev.Release(timestamp=T, final=False), {"final": False}),
        (ev.Exception_(timestamp=T, type="cancel", severity=0), {"type": "cancel", "severity": 0}),
        (
            ev.Exception_(timestamp=T, type="x", severity=2, userid=-1, note=""),
            {"type": "x", "severity": 2},
        ),
        (ev.Finish(timestamp=T, status=0), {"status": 0}),
    ],
    ids=["invalidate", "release", "release-not-final", "exception", "exception-defaults",
         "finish-status-0"],
)
def test_defaults_are_omitted_from_the_context(event, context):
    assert json.loads(ev.event_context(event)) == context


def test_a_submit_context_leaves_out_flags_at_their_default():
    context = json.loads(ev.event_context(ev.Submit(timestamp=T, userid=5, urgency=16)))
    assert "flags" not in context
    assert (context["userid"], context["urgency"]) == (5, 16)
    flagged = ev.Submit(timestamp=T, userid=5, urgency=16, flags=2)
    assert json.loads(ev.event_context(flagged))["flags"] == 2


def test_an_empty_memo_has_an_empty_context():
    """Memo.data's default is a factory ({}); it must still count as a default."""
    assert ev.event_context(ev.Memo(timestamp=T)) == b"{}"


@pytest.mark.parametrize("context", ['{"status": 0}', b'{"status": 0}', '  {"status":0}\n'])
def test_the_context_may_be_str_or_bytes_with_whitespace(context):
    assert ev.decode_event("finish", "1.5", context) == ev.Finish(timestamp=1.5, status=0)


@pytest.mark.parametrize("timestamp", ["1.5", b"1.5", 1.5, "1.5e0"])
def test_the_timestamp_may_be_str_bytes_or_float(timestamp):
    assert ev.decode_event(b"validate", timestamp, b"{}") == ev.Validate(timestamp=1.5)


def test_a_context_with_unknown_fields_still_decodes():
    """Forward compatibility: a newer writer may add context fields; older readers ignore them."""
    event = ev.decode_event("finish", "2.0", '{"status": 0, "added_later": {"a": [1, 2]}}')
    assert event == ev.Finish(timestamp=2.0, status=0)


def test_a_context_with_unknown_fields_decodes_for_an_event_without_fields():
    assert ev.decode_event("clean", "2.0", '{"why": "new in v2"}') == ev.Clean(timestamp=2.0)


@pytest.mark.parametrize("name", ["bogus", "Validate", "", "name"])
def test_an_unknown_event_name_is_corrupt(name):
    message = rf"^event {name!r}: Invalid value {name!r} - at `\$\.name`"
    with pytest.raises(CorruptEntry, match=message):
        ev.decode_event(name, "1.0", "{}")


@pytest.mark.parametrize(
    "context", ["[]", '"text"', "", "null", "1", '{"status": 0', '"status": 0}']
)
def test_a_context_that_is_not_a_json_object_is_corrupt(context):
    with pytest.raises(CorruptEntry, match=r"^event 'finish': context is not a JSON object$"):
        ev.decode_event("finish", "1.0", context)


@pytest.mark.parametrize(
    "context", ['{"status": 0,}', '{"status" 0}', '{"status": 0} {"a": 1}', "{,}"]
)
def test_malformed_json_inside_the_braces_is_corrupt(context):
    with pytest.raises(CorruptEntry, match=r"^event 'finish': JSON is malformed"):
        ev.decode_event("finish", "1.0", context)


@pytest.mark.parametrize("timestamp", ["", "soon", b"12:00", "1.0.0", b"\xff"])
def test_a_bad_timestamp_is_corrupt(timestamp):
    with pytest.raises(CorruptEntry, match=r"^event 'validate': bad timestamp "):
        ev.decode_event("validate", timestamp, "{}")


@pytest.mark.parametrize("timestamp", ["nan", "inf", "-inf", "1e400"])
def test_a_non_finite_timestamp_is_reported_as_a_bad_timestamp(timestamp):
    with pytest.raises(CorruptEntry, match="bad timestamp"):
        ev.decode_event("validate", timestamp, "{}")


@pytest.mark.parametrize(
    ("name", "context", "message"),
    [
        ("finish", '{"status": "0"}', r"Expected `int`, got `str` - at `\$\.status`"),
        ("finish", '{"status": 1.5}', r"Expected `int`, got `float` - at `\$\.status`"),
        ("finish", '{"status": true}', r"Expected `int`, got `bool` - at `\$\.status`"),
        ("release", '{"final": "yes"}', r"Expected `bool`, got `str` - at `\$\.final`"),
        ("memo", '{"data": [1]}', r"Expected `object`, got `array` - at `\$\.data`"),
        ("exception", '{"type": 1, "severity": 0}', r"Expected `str`, got `int` - at `\$\.type`"),
    ],
    ids=["status-str", "status-float", "status-bool", "final-str", "data-array", "type-int"],
)
def test_a_context_field_of_the_wrong_type_is_corrupt_naming_the_field(name, context, message):
    with pytest.raises(CorruptEntry, match=rf"^event '{name}': {message}"):
        ev.decode_event(name, "1.0", context)


@pytest.mark.parametrize(
    ("name", "context", "field"),
    [
        ("finish", "{}", "status"),
        ("priority", "{}", "priority"),
        ("submit", '{"userid": 1}', "urgency"),
        ("exception", '{"type": "cancel"}', "severity"),
    ],
)
def test_a_context_missing_a_required_field_is_corrupt_naming_it(name, context, field):
    message = rf"^event '{name}': Object missing required field `{field}`"
    with pytest.raises(CorruptEntry, match=message):
        ev.decode_event(name, "1.0", context)


@pytest.mark.parametrize("missing", ["name", "timestamp", "context"])
@pytest.mark.parametrize("as_bytes", [False, True], ids=["str-keys", "bytes-keys"])
def test_an_entry_missing_a_stream_field_is_corrupt_naming_it(missing, as_bytes):
    complete = ev.event_fields(ev.Finish(timestamp=T, status=0))
    fields = {key: value for key, value in complete.items() if key != missing}
    if as_bytes:
        fields = {k.encode(): v for k, v in fields.items()}
    with pytest.raises(CorruptEntry, match=f"^entry lacks field .*{missing}"):
        ev.decode_entry(fields)


def test_an_empty_entry_is_corrupt():
    with pytest.raises(CorruptEntry, match="^entry lacks field 'name'"):
        ev.decode_entry({})


def test_a_context_naming_a_different_event_is_corrupt():
    with pytest.raises(CorruptEntry, match="^event 'finish'"):
        ev.decode_event("finish", "1.0", '{"status": 0, "name": "clean"}')


def test_a_timestamp_inside_the_context_cannot_override_the_entry_timestamp():
    try:
        event = ev.decode_event("finish", "1.0", '{"status": 0, "timestamp": 99.0}')
    except CorruptEntry:
        return
    assert event.timestamp == 1.0


def test_a_name_that_is_not_utf8_is_corrupt():
    with pytest.raises(CorruptEntry):
        ev.decode_entry({b"name": b"\xffvalidate", b"timestamp": b"1.0", b"context": b"{}"})


def test_a_context_string_that_is_not_utf8_is_corrupt():
    with pytest.raises(CorruptEntry, match="^event 'exception': "):
        ev.decode_event("exception", "1.0", b'{"type": "cancel", "severity": 0, "note": "\xff"}')



def test_corrupt_entry_keeps_the_underlying_error_as_its_cause():
    with pytest.raises(CorruptEntry) as caught:
        ev.decode_event("finish", "1.0", '{"status": "x"}')
    assert caught.value.__cause__ is not None


def test_an_entry_carries_the_jobspec_on_submit_and_r_on_alloc_in_its_data_field():
    from jobjournal.common.events import entry_attachments

    assert entry_attachments({b"name": b"submit", b"data": b"{}"}) == (b"{}", None)
    assert entry_attachments({b"name": b"alloc", b"data": b"[]"}) == (None, b"[]")
    assert entry_attachments({b"name": b"start", b"data": b""}) == (None, None)
    assert entry_attachments({b"name": b"submit", b"jobspec": b"{}"}) == (b"{}", None), "format 1 still reads"
    assert entry_attachments({b"name": b"alloc", b"R": b"[]"}) == (None, b"[]")
