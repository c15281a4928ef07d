"""The environment rules of `jobjournal submit --env` (pure logic)."""

import pytest

from jobjournal.common.env_rules import EnvRuleError, job_environment, url_has_password

SUBMITTER = {"HOME": "/home/u", "PATH": "/bin", "SECRET_KEY": "s", "SECRET_TOKEN": "t"}


def test_without_rules_the_job_gets_a_copy_of_the_submitters_whole_environment():
    assert job_environment(SUBMITTER, []) == SUBMITTER


def test_rules_apply_in_order_removal_copy_and_set_with_expansion():
    rules = ["-*", "HOME", "P*", "GREETING=hi from $HOME", "EMPTY="]
    assert job_environment(SUBMITTER, rules) == {"HOME": "/home/u", "PATH": "/bin",
                                                 "GREETING": "hi from /home/u", "EMPTY": ""}


def test_a_removal_pattern_removes_only_what_matches():
    assert job_environment(SUBMITTER, ["-SECRET_*"]) == {"HOME": "/home/u", "PATH": "/bin"}


def test_an_unknown_variable_in_a_value_is_left_as_written():
    assert job_environment({}, ["A=$NOPE-x"]) == {"A": "$NOPE-x"}


@pytest.mark.parametrize("rule", ["", "-", "1A=x", "A B=x"])
def test_a_rule_that_is_not_one_of_the_forms_is_an_error(rule):
    with pytest.raises(EnvRuleError):
        job_environment(SUBMITTER, [rule])


CREDENTIALS = {
    "JOBJOURNAL_REDIS_URL": "unix://bob:pw-bob@/run/redis.sock",
    "JOBJOURNAL_QUEUE_REDIS_URL": "redis://queue:6379/0?password=pw-bob",
    "JOBJOURNAL_ADMIN_PASSWORD": "x",
    "JOBJOURNAL_SOME_SECRET": "y",
    "REDISCLI_AUTH": "z",
}
HARMLESS = {
    "JOBJOURNAL_HOME": "/home/u/jj",
    "JOBJOURNAL_TEST_REDIS_URL": "unix:///tmp/redis.sock",  # a URL with no password
    "JOBJOURNAL_CLUSTER_URL": "redis+cluster://user@node:7000",  # a user, no password
    "REDIS_URL": "redis://:pw@app-cache:6379",  # not jobjournal's: the job may well need it
    "API_TOKEN": "t",
}


def test_by_default_the_job_gets_no_variable_holding_jobjournals_redis_credentials():
    assert job_environment({**SUBMITTER, **CREDENTIALS, **HARMLESS}, []) == {**SUBMITTER, **HARMLESS}


def test_a_rule_naming_a_credential_puts_it_back_and_a_pattern_does_not():
    submitter = {**SUBMITTER, **CREDENTIALS}
    assert job_environment(submitter, ["JOBJOURNAL_REDIS_URL"]) == {
        **SUBMITTER, "JOBJOURNAL_REDIS_URL": CREDENTIALS["JOBJOURNAL_REDIS_URL"]}
    assert job_environment(submitter, ["-*", "JOBJOURNAL_*", "REDISCLI_AU?H"]) == {}
    assert job_environment(submitter, ["-*", "JOBJOURNAL_REDIS_URL=unix://bob:pw@/s"]) == {
        "JOBJOURNAL_REDIS_URL": "unix://bob:pw@/s"}
    assert job_environment(submitter, ["-*", "A=$JOBJOURNAL_REDIS_URL"]) == {"A": "$JOBJOURNAL_REDIS_URL"}


@pytest.mark.parametrize(("url", "holds"), [
    ("unix://executor:secret@/run/redis.sock", True),
    ("redis://:secret@host:6379/0", True),
    ("rediss://host?password=secret", True),
    ("redis://user@host", False),
    ("unix:///run/redis.sock", False),
    ("redis://u:secret@[::1", True),  # not readable as a URL: it may hold one if it names a user
    ("redis://[::1", False),
])
def test_a_url_holds_a_password_in_its_authority_or_its_query(url, holds):
    assert url_has_password(url) is holds
