"""Settings read from JOBJOURNAL_* variables of an injected environment."""

from __future__ import annotations

import pytest

from jobjournal.common.errors import JobJournalError
from jobjournal.common.settings import Settings, load_settings


def test_an_empty_environment_gives_the_defaults():
    settings = load_settings({})
    assert (settings.redis_url, settings.nodes, settings.cores_per_node) == ("", 4, 8)
    assert (settings.exec_backend, settings.lease_ttl) == ("sim", 5.0)
    assert settings.request_timeout == 30.0
    assert settings.home.endswith("jobjournal")


def test_the_injected_environment_is_used_not_the_process_environment(monkeypatch):
    monkeypatch.setenv("JOBJOURNAL_NODES", "99")
    assert load_settings({}).nodes == 4
    assert load_settings({"JOBJOURNAL_NODES": "7"}).nodes == 7


def test_strings_are_converted_to_ints_and_floats():
    settings = load_settings({
        "JOBJOURNAL_NODES": "16",
        "JOBJOURNAL_CORES_PER_NODE": "64",
        "JOBJOURNAL_LEASE_TTL": "2.5",
        "JOBJOURNAL_PURGE_AGE_LIMIT": "3600",
        "JOBJOURNAL_PURGE_NUM_LIMIT": "100",
        "JOBJOURNAL_JOURNAL_MAXLEN": "0",
        "JOBJOURNAL_MAX_JOBSPEC_BYTES": "1024",
        "JOBJOURNAL_REQUEST_TIMEOUT": "0.5",
    })
    assert (settings.nodes, settings.cores_per_node, settings.purge_num_limit) == (16, 64, 100)
    assert (settings.journal_maxlen, settings.max_jobspec_bytes) == (0, 1024)
    assert (settings.lease_ttl, settings.purge_age_limit) == (2.5, 3600.0)
    assert settings.request_timeout == 0.5
    assert isinstance(settings.nodes, int) and isinstance(settings.purge_age_limit, float)


def test_string_settings_are_taken_as_they_are():
    settings = load_settings({
        "JOBJOURNAL_REDIS_URL": "redis://h:6380/2",
        "JOBJOURNAL_HOME": "/srv/jj",
        "JOBJOURNAL_EXEC_BACKEND": "rq",
    })
    assert settings.redis_url == "redis://h:6380/2"
    assert (settings.home, settings.exec_backend) == ("/srv/jj", "rq")


def test_unknown_and_unprefixed_variables_are_ignored():
    settings = load_settings({
        "JOBJOURNAL_NO_SUCH_SETTING": "x",
        "JOBJOURNAL_": "x",
        "NODES": "9",
        "OTHER_NODES": "9",
        "XJOBJOURNAL_NODES": "9",
    })
    assert settings == load_settings({})


def test_overrides_win_over_the_environment():
    assert load_settings({"JOBJOURNAL_NODES": "8"}, nodes=2).nodes == 2


def test_settings_are_frozen():
    settings = load_settings({})
    with pytest.raises(AttributeError):
        settings.nodes = 1  # type: ignore[misc]
    assert isinstance(settings, Settings)


@pytest.mark.parametrize(
    ("variable", "value", "field"),
    [
        ("JOBJOURNAL_NODES", "four", "$.nodes"),
        ("JOBJOURNAL_NODES", "1.5", "$.nodes"),
        ("JOBJOURNAL_NODES", "", "$.nodes"),
        ("JOBJOURNAL_CORES_PER_NODE", "8 cores", "$.cores_per_node"),
        ("JOBJOURNAL_LEASE_TTL", "fast", "$.lease_ttl"),
        ("JOBJOURNAL_PURGE_AGE_LIMIT", "1 day", "$.purge_age_limit"),
        ("JOBJOURNAL_MAX_JOBSPEC_BYTES", "64k", "$.max_jobspec_bytes"),
        ("JOBJOURNAL_REQUEST_TIMEOUT", "", "$.request_timeout"),
    ],
)
def test_a_bad_value_raises_naming_its_variable(variable, value, field):
    with pytest.raises(JobJournalError, match=f"^bad setting {variable}: ") as caught:
        load_settings({variable: value})
    assert "$." not in str(caught.value) and "\n" not in str(caught.value)
    assert variable == "JOBJOURNAL_" + field.removeprefix("$.").upper()


def test_a_bad_override_raises_naming_the_variable_it_stands_for():
    with pytest.raises(JobJournalError, match="^bad setting JOBJOURNAL_NODES: "):
        load_settings({}, nodes="many")


@pytest.mark.parametrize(
    ("variable", "value", "field"),
    [
        ("JOBJOURNAL_NODES", "-1", "$.nodes"),
        ("JOBJOURNAL_CORES_PER_NODE", "0", "$.cores_per_node"),
        ("JOBJOURNAL_LEASE_TTL", "-5", "$.lease_ttl"),
        ("JOBJOURNAL_REQUEST_TIMEOUT", "nan", "$.request_timeout"),
    ],
)
def test_an_out_of_range_value_raises_naming_its_variable(variable, value, field):
    with pytest.raises(JobJournalError, match=f"^bad setting {variable}: "):
        load_settings({variable: value})


def test_duration_settings_take_rfc_23_durations_or_seconds():
    settings = load_settings({"JOBJOURNAL_LEASE_TTL": "1500ms", "JOBJOURNAL_PURGE_AGE_LIMIT": "2d",
                              "JOBJOURNAL_JOURNAL_KEEP_S": "30", "JOBJOURNAL_REQUEST_TIMEOUT": "1.5m"})
    assert (settings.lease_ttl, settings.purge_age_limit, settings.journal_keep_s, settings.request_timeout) == (
        1.5, 172800.0, 30.0, 90.0)
    with pytest.raises(JobJournalError, match="^bad setting JOBJOURNAL_PURGE_AGE_LIMIT: "):
        load_settings({"JOBJOURNAL_PURGE_AGE_LIMIT": "inf"})  # parsed, then out of range


def test_every_duration_setting_is_read_as_a_duration():
    from jobjournal.common.settings import DURATIONS, PositiveSeconds, Seconds

    hints = __import__("typing").get_type_hints(Settings, include_extras=True)
    assert {name for name, hint in hints.items() if hint in (Seconds, PositiveSeconds)} == DURATIONS
