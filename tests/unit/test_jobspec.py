"""Jobspec validation: every bad value is an InvalidJobspec whose message names the bad field."""

from __future__ import annotations

import json

import pytest

from jobjournal.common.errors import InvalidJobspec
from jobjournal.common.jobspec import (
    URGENCY_DEFAULT,
    Jobspec,
    encode,
    make_jobspec,
    parse_jobspec,
    redact,
)


def parse(**fields) -> Jobspec:
    """Parse a JSON document built from fields, with a valid command unless one is given."""
    return parse_jobspec(json.dumps({"command": ["/bin/true"], **fields}))


BAD_FIELDS = [
    # (field overrides, the field the message must name)
    ({"ntasks": 0}, "`$.ntasks`"),
    ({"ntasks": -1}, "`$.ntasks`"),
    ({"ntasks": 1_000_001}, "`$.ntasks`"),
    ({"ntasks": "2"}, "`$.ntasks`"),
    ({"ntasks": 1.5}, "`$.ntasks`"),
    ({"ntasks": True}, "`$.ntasks`"),
    ({"ntasks": None}, "`$.ntasks`"),
    ({"nodes": 0}, "`$.nodes`"),
    ({"nodes": "1"}, "`$.nodes`"),
    ({"nodes": 1_000_001, "ntasks": 1_000_000}, "`$.nodes`"),
    ({"cores_per_task": 0}, "`$.cores_per_task`"),
    ({"cores_per_task": 1_000_001}, "`$.cores_per_task`"),
    ({"cores_per_task": [1]}, "`$.cores_per_task`"),
    ({"duration": -0.5}, "`$.duration`"),
    ({"duration": 365 * 24 * 3600 + 1}, "`$.duration`"),
    ({"duration": "1h"}, "`$.duration`"),
    ({"cwd": 7}, "`$.cwd`"),
    ({"cwd": "d" * 4097}, "`$.cwd`"),
    ({"queue": None}, "`$.queue`"),
    ({"queue": "q" * 257}, "`$.queue`"),
    ({"name": ["x"]}, "`$.name`"),
    ({"name": "n" * 257}, "`$.name`"),
    ({"environment": ["A=1"]}, "`$.environment`"),
    ({"environment": {"A": 1}}, "`$.environment[...]`"),
    ({"urgency": -1}, "`$.urgency`"),
    ({"urgency": 32}, "`$.urgency`"),
    ({"urgency": "16"}, "`$.urgency`"),
    ({"sim": 1.0}, "`$.sim`"),
    ({"sim": {"runtime": -1}}, "`$.sim.runtime`"),
    ({"sim": {"exit_code": 256}}, "`$.sim.exit_code`"),
    ({"sim": {"exit_code": -1}}, "`$.sim.exit_code`"),
    ({"sim": {"exitcode": 1}}, "`$.sim`"),
    ({"version": "1"}, "`$.version`"),
    ({"command": "/bin/true"}, "`$.command`"),
    ({"command": []}, "`$.command`"),
    ({"command": [1]}, "`$.command[0]`"),
    ({"command": ["/bin/echo", None]}, "`$.command[1]`"),
]


@pytest.mark.parametrize(("fields", "where"), BAD_FIELDS, ids=lambda value: repr(value)[:40])
def test_a_bad_field_is_rejected_naming_the_field(fields, where):
    with pytest.raises(InvalidJobspec, match="^invalid jobspec: ") as caught:
        parse(**fields)
    assert where in str(caught.value)


@pytest.mark.parametrize(("fields", "where"), BAD_FIELDS[:12], ids=lambda value: repr(value)[:40])
def test_make_jobspec_rejects_the_same_bad_fields_naming_the_field(fields, where):
    with pytest.raises(InvalidJobspec) as caught:
        make_jobspec(**{"command": ["/bin/true"], **fields})
    assert where in str(caught.value)


def test_a_missing_command_is_rejected_naming_the_field():
    with pytest.raises(InvalidJobspec, match="missing required field `command`"):
        parse_jobspec(b'{"ntasks": 2}')


def test_an_empty_program_name_is_rejected_naming_command_0():
    with pytest.raises(InvalidJobspec, match=r"empty command - at `\$\.command\[0\]`"):
        parse(command=["", "arg"])


def test_an_empty_program_name_is_rejected_by_make_jobspec_too():
    with pytest.raises(InvalidJobspec, match=r"`\$\.command\[0\]`"):
        make_jobspec(command=[""])


def test_an_unknown_field_is_rejected_naming_the_field():
    with pytest.raises(InvalidJobspec, match="unknown field `colour`"):
        parse(colour="blue")


def test_an_unknown_field_is_rejected_by_make_jobspec_too():
    with pytest.raises(InvalidJobspec, match="unknown field `colour`"):
        make_jobspec(command=["/bin/true"], colour="blue")


@pytest.mark.parametrize(("ntasks", "nodes"), [(1, 2), (3, 4), (10, 11)])
def test_more_nodes_than_tasks_is_rejected_naming_nodes(ntasks, nodes):
    with pytest.raises(InvalidJobspec, match=r"more nodes than tasks - at `\$\.nodes`"):
        parse(ntasks=ntasks, nodes=nodes)


@pytest.mark.parametrize("ntasks", [1, 2, 5])
def test_as_many_nodes_as_tasks_is_accepted(ntasks):
    assert parse(ntasks=ntasks, nodes=ntasks).nodes == ntasks


@pytest.mark.parametrize("name", ["A=B", "=A", "A=", "=", "A\x00B", ""])
def test_an_environment_name_with_an_equals_sign_or_nul_or_empty_is_rejected(name):
    with pytest.raises(InvalidJobspec, match=r"`key` in `\$\.environment`"):
        parse(environment={name: "value"})


def test_an_environment_value_may_contain_equals_signs():
    assert parse(environment={"OPTS": "a=b=c"}).environment == {"OPTS": "a=b=c"}


@pytest.mark.parametrize("version", [0, 2, -1])
def test_an_unsupported_version_is_rejected_naming_the_field(version):
    message = rf"unsupported jobspec version {version} - at `\$\.version`"
    with pytest.raises(InvalidJobspec, match=message):
        parse(version=version)


@pytest.mark.parametrize(
    "document",
    [b"", b"{", b"{not json}", b'{"command": ["a"],}', b"\xff\xfe", b"null"],
    ids=["empty", "unclosed", "bare-word", "trailing-comma", "not-utf8", "null"],
)
def test_a_document_that_is_not_a_json_object_is_rejected(document):
    with pytest.raises(InvalidJobspec, match="^invalid jobspec: "):
        parse_jobspec(document)


def test_a_json_array_is_rejected_as_not_an_object():
    with pytest.raises(InvalidJobspec, match="Expected `object`, got `array`"):
        parse_jobspec(b'[["/bin/true"]]')


def test_a_document_over_max_bytes_is_rejected_before_decoding():
    document = json.dumps({"command": ["/bin/true"], "name": "x" * 100})
    message = rf"^invalid jobspec: {len(document)} bytes is more than the limit of 64$"
    with pytest.raises(InvalidJobspec, match=message):
        parse_jobspec(document, max_bytes=64)


def test_the_size_limit_counts_bytes_not_characters():
    document = json.dumps({"command": ["/bin/true"], "name": "é" * 20}, ensure_ascii=False)
    limit = len(document) + 5  # fits in characters, not in UTF-8 bytes (each é is 2 bytes)
    with pytest.raises(InvalidJobspec, match="more than the limit"):
        parse_jobspec(document, max_bytes=limit)


def test_a_document_of_exactly_max_bytes_is_accepted():
    document = b'{"command":["/bin/true"]}'
    assert parse_jobspec(document, max_bytes=len(document)).command == ["/bin/true"]


def test_the_default_size_limit_is_64_kib():
    document = json.dumps({"command": ["/bin/true"], "cwd": "", "name": ""}).encode()
    padded = document[:-1] + b" " * (65536 - len(document)) + b"}"
    assert len(padded) == 65536
    assert parse_jobspec(padded).command == ["/bin/true"]
    with pytest.raises(InvalidJobspec, match="65537 bytes is more than the limit of 65536"):
        parse_jobspec(padded + b" ")


def test_str_and_bytes_documents_parse_the_same():
    document = '{"command": ["/bin/sleep", "1"], "ntasks": 2, "environment": {"A": "1"}}'
    assert parse_jobspec(document) == parse_jobspec(document.encode())


def test_a_minimal_jobspec_gets_every_default():
    spec = parse_jobspec(b'{"command": ["/bin/true"]}')
    assert (spec.ntasks, spec.nodes, spec.cores_per_task, spec.duration) == (1, None, 1, 0.0)
    assert (spec.cwd, spec.queue, spec.name, spec.environment) == ("", "default", "", {})
    assert (spec.urgency, spec.sim, spec.version) == (URGENCY_DEFAULT, None, 1)


def test_bounds_are_inclusive():
    spec = parse(ntasks=1_000_000, urgency=31, duration=365 * 24 * 3600, sim={"exit_code": 255})
    assert (spec.ntasks, spec.urgency, spec.duration, spec.sim.exit_code) == (
        1_000_000, 31, 365 * 24 * 3600.0, 255,
    )
    assert parse(urgency=0, duration=0).urgency == 0


def test_an_integer_duration_is_accepted_as_seconds():
    assert parse(duration=90).duration == 90.0


def test_ncores_is_tasks_times_cores_per_task():
    assert parse(ntasks=3, cores_per_task=4).ncores == 12


@pytest.mark.parametrize(
    ("command", "job_name"),
    [(["/bin/sleep", "10"], "sleep"), (["sleep"], "sleep"), (["./a/b/run.sh", "-x"], "run.sh")],
)
def test_the_job_name_defaults_to_the_basename_of_the_program(command, job_name):
    assert parse(command=command).job_name == job_name


def test_an_explicit_name_overrides_the_program_basename():
    assert parse(command=["/bin/sleep"], name="nap").job_name == "nap"


def test_redaction_drops_the_environment_and_keeps_everything_else():
    spec = parse(environment={"SECRET": "hunter2"}, ntasks=2, name="n", urgency=3)
    public = redact(spec)
    assert public.environment == {}
    assert b"SECRET" not in encode(public) and b"hunter2" not in encode(public)
    assert public == make_jobspec(command=["/bin/true"], ntasks=2, name="n", urgency=3)


def test_redaction_leaves_the_original_untouched():
    spec = parse(environment={"SECRET": "hunter2"})
    redact(spec)
    assert spec.environment == {"SECRET": "hunter2"}


def test_encode_omits_every_default():
    assert encode(make_jobspec(command=["/bin/true"])) == b'{"command":["/bin/true"]}'


def test_encode_keeps_values_that_differ_from_the_default():
    encoded = json.loads(encode(make_jobspec(command=["a"], ntasks=2, urgency=0, queue="batch")))
    assert encoded == {"command": ["a"], "ntasks": 2, "urgency": 0, "queue": "batch"}


def test_an_encoded_jobspec_parses_back_to_an_equal_one():
    spec = make_jobspec(
        command=["/bin/echo", "hi"], ntasks=4, nodes=2, cores_per_task=2, duration=60.5,
        cwd="/tmp", queue="batch", name="echo", environment={"A": "1"}, urgency=20,
        sim={"runtime": 1.5, "exit_code": 3},
    )
    assert parse_jobspec(encode(spec)) == spec


@pytest.mark.parametrize(
    ("command", "name", "expected"),
    [(["/usr/bin/sleep", "1"], "", "sleep"), (["sleep"], "", "sleep"), (["/opt/app/"], "", "/opt/app/"),
     (["/"], "", "/"), (["/usr/bin/sleep"], "nap", "nap")],
)
def test_a_job_is_named_by_its_name_else_the_basename_else_the_whole_first_argument(command, name, expected):
    assert make_jobspec(command=command, name=name).job_name == expected
