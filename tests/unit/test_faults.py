"""Fault points (common/faults.py): a plan acts once, at its pass; a mistyped plan fails at once."""

import pytest

from jobjournal.common.errors import JobJournalError
from jobjournal.common.faults import POINTS, FaultInjected, FaultPoints, parse_plan
from jobjournal.common.settings import load_settings


def test_no_plan_never_acts_and_counts_passes():
    faults = FaultPoints()
    for _ in range(3):
        faults.reached("manager.posted")
    assert faults.passes["manager.posted"] == 3


def test_a_raise_plan_acts_at_its_pass_of_its_point_alone():
    faults = FaultPoints("manager.posted@2:raise")
    faults.reached("manager.posted")
    faults.reached("manager.dispatched")
    faults.reached("manager.dispatched")
    with pytest.raises(FaultInjected, match="manager.posted, pass 2"):
        faults.reached("manager.posted")
    faults.reached("manager.posted")  # once only


def test_exit_is_the_default_action():
    assert parse_plan("lister.applied@4").action == "exit"


@pytest.mark.parametrize(
    ("plan", "says"),
    [("manager.postd@1", "no point 'manager.postd'"), ("manager.posted@0", "whole number"),
     ("manager.posted", "whole number"), ("manager.posted@x", "whole number"),
     ("manager.posted@1:explode", "action 'explode'")],
)
def test_a_malformed_plan_is_refused_in_one_line(plan, says):
    with pytest.raises(JobJournalError, match=says) as caught:
        parse_plan(plan)
    assert "\n" not in str(caught.value)


def test_a_mistyped_fault_setting_fails_when_the_settings_are_read():
    with pytest.raises(JobJournalError, match="no point"):
        load_settings({"JOBJOURNAL_FAULT": "manager.nowhere@1"})


def test_every_point_is_reached_somewhere_in_the_code():
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    code = "".join(path.read_text() for folder in ("manager", "lister") for path in (root / folder).glob("*.py"))
    for point in POINTS:
        assert f'reached("{point}")' in code, f"no process reaches {point}"
