"""The environment rules of `jobjournal submit --env` (pure logic)."""

import pytest

from jobjournal.common.env_rules import EnvRuleError, job_environment

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
