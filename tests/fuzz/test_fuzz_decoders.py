"""Bad input, fuzzed: every decoder at the edge either returns a value or raises its clear,
named error; nothing else escapes."""

import contextlib

import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jobjournal.common import journal as jr
from jobjournal.common import messages
from jobjournal.common import reply_format as rf
from jobjournal.common.errors import CorruptEntry, InvalidJobId, InvalidJobspec
from jobjournal.common.events import decode_event
from jobjournal.common.ids import parse_job_id
from jobjournal.common.jobspec import parse_jobspec
from jobjournal.lister.constraints import compile_constraint
from jobjournal.lister.errors import QueryError
from jobjournal.lister.model import JobView

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30)
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=12), children, max_size=5),
    max_leaves=25,
)
jobspec_like = st.fixed_dictionaries(
    {"command": st.one_of(st.lists(st.text(max_size=10), max_size=3), json_values)},
    optional={
        "ntasks": json_values, "nodes": json_values, "cores_per_task": json_values, "duration": json_values,
        "cwd": json_values, "queue": json_values, "name": json_values, "environment": json_values,
        "urgency": json_values, "sim": json_values, "version": json_values,
    },
)


@FUZZ
@given(st.one_of(jobspec_like, json_values))
def test_any_jobspec_document_is_accepted_or_refused_clearly(document):
    raw = msgspec.json.encode(document)
    try:
        spec = parse_jobspec(raw)
    except InvalidJobspec as err:
        assert str(err).startswith("invalid jobspec")
        return
    assert spec.command and spec.ntasks >= 1 and 0 <= spec.urgency <= 31


@FUZZ
@given(st.binary(max_size=300) | st.text(max_size=100).map(str.encode))
def test_any_bytes_as_a_jobspec_are_refused_clearly(raw):
    with contextlib.suppress(InvalidJobspec):
        parse_jobspec(raw)


@FUZZ
@given(st.text(max_size=40))
def test_any_text_as_a_job_id_is_an_id_or_invalid(text):
    try:
        value = parse_job_id(text)
    except InvalidJobId as err:
        assert "invalid job id" in str(err)
        return
    assert 0 <= value < 2**64


@FUZZ
@given(json_values)
def test_any_constraint_compiles_or_is_refused_and_never_crashes_a_query(expression):
    try:
        predicate = compile_constraint(expression)
    except QueryError:
        return
    view = JobView(id=1, userid=5, state="INACTIVE", result="FAILED", t_submit=1.0, t_inactive=2.0)
    assert predicate(view) in (True, False)


@FUZZ
@given(st.binary(max_size=200) | json_values.map(msgspec.json.encode))
def test_any_inbox_message_decodes_or_is_corrupt(raw):
    with contextlib.suppress(CorruptEntry):
        messages.decode_request(raw)


field_values = st.binary(max_size=40) | st.sampled_from(
    [b"1", b"submit", b"{}", b"purge", b"job", b"jobs", b"sentinel", b"[]", b'[{"id":1,"eventlog":[]}]', b'[{"id":1}]']
)
entry_fields = st.dictionaries(
    st.sampled_from([b"v", b"seq", b"id", b"name", b"timestamp", b"context", b"type", b"cursor", b"jobs",
                     b"count", b"eventlog", b"jobspec", b"R", b"data"]),
    field_values,
    max_size=8,
)


@FUZZ
@given(entry_fields)
def test_any_journal_or_reply_entry_decodes_or_is_corrupt(fields):
    for decode in (jr.decode_journal_entry, rf.decode_reply_entry):
        with contextlib.suppress(CorruptEntry):
            decode(b"1-0", fields)


@FUZZ
@given(st.binary(max_size=20), st.binary(max_size=30), st.binary(max_size=60))
def test_any_eventlog_fields_decode_or_are_corrupt(name, timestamp, context):
    with contextlib.suppress(CorruptEntry):
        decode_event(name, timestamp, context)
