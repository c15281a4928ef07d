"""Fault tests: real processes killed with SIGKILL. `make test` runs a few rounds;
`make faults` sets JOBJOURNAL_FAULT_ROUNDS higher."""

import os

import pytest


@pytest.fixture
def rounds() -> int:
    return int(os.environ.get("JOBJOURNAL_FAULT_ROUNDS", "5"))
