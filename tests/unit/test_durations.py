"""Flux Standard Duration (RFC 23): the one parser every duration option uses."""

import math

import pytest

from jobjournal.common.durations import parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30", 30.0), ("1.5", 1.5), (".5s", 0.5), ("250ms", 0.25), ("2m", 120.0), ("1.5h", 5400.0), ("2d", 172800.0),
     ("1e3ms", 1.0), ("0", 0.0), (" 4s ", 4.0), ("inf", math.inf), ("infinity", math.inf)],
)
def test_a_duration_is_a_number_with_an_optional_unit(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "s", "-1s", "5M", "5S", "1h30m", "1 h", "infs", "nan", "0x10", "1,5s"])
def test_anything_else_is_refused_saying_what_a_duration_is(text):
    with pytest.raises(ValueError, match="RFC 23"):
        parse_duration(text)
