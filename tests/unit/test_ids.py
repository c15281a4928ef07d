"""Job ids: time-ordered, unique across generators, and their printable forms."""

from __future__ import annotations

import fakeredis
import pytest

from jobjournal.common import keys
from jobjournal.common.errors import InvalidJobId
from jobjournal.common.ids import (
    EPOCH_MS,
    MAX_GENERATOR,
    MAX_ID,
    MAX_SEQ,
    IdGenerator,
    RenewedGenerators,
    f58,
    generator_from_redis,
    id_timestamp,
    parse_job_id,
)

NOW = 1_750_000_000.0


def clock_at(seconds: float = NOW):
    """A clock stopped at `seconds`."""
    return lambda: seconds


def settable_clock(seconds: float = NOW):
    """A clock the test moves: returns (clock, now), where now[0] is the time it reports."""
    now = [seconds]
    return (lambda: now[0]), now


def test_ids_from_one_generator_increase_as_time_passes():
    clock, now = settable_clock()
    generator = IdGenerator(1, clock=clock)
    ids = []
    for step in range(5):
        now[0] = NOW + step * 0.01
        ids.append(generator.next_id())
    assert ids == sorted(ids) and len(set(ids)) == 5


@pytest.mark.parametrize("step_back", [0.001, 1.0, 3600.0])
def test_ids_keep_increasing_when_the_clock_steps_back(step_back):
    clock, now = settable_clock()
    generator = IdGenerator(3, clock=clock)
    before = [generator.next_id() for _ in range(3)]
    now[0] = NOW - step_back
    after = [generator.next_id() for _ in range(3)]
    assert before + after == sorted(before + after)
    assert len(set(before + after)) == 6


def test_after_the_clock_steps_back_ids_resume_from_the_clock_once_it_catches_up():
    clock, now = settable_clock()
    generator = IdGenerator(3, clock=clock)
    first = generator.next_id()
    now[0] = NOW - 10
    generator.next_id()
    now[0] = NOW + 1
    later = generator.next_id()
    assert later > first and id_timestamp(later) == pytest.approx(NOW + 1, abs=0.001)


def test_two_generators_in_the_same_millisecond_never_collide():
    clock = clock_at(NOW)
    one, two = IdGenerator(1, clock=clock), IdGenerator(2, clock=clock)
    ids = [generator.next_id() for _ in range(50) for generator in (one, two)]
    assert len(set(ids)) == 100


def test_more_than_1024_ids_in_one_millisecond_stay_unique_and_increasing():
    generator = IdGenerator(7, clock=clock_at())
    ids = [generator.next_id() for _ in range(3 * (MAX_SEQ + 1) + 5)]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)


def test_running_out_of_sequence_borrows_the_next_millisecond_not_another_generator():
    generator = IdGenerator(7, clock=clock_at())
    ids = [generator.next_id() for _ in range(MAX_SEQ + 3)]
    generator_bits = {(job_id >> 10) & MAX_GENERATOR for job_id in ids}
    assert generator_bits == {7}
    milliseconds = [job_id >> 24 for job_id in ids]
    assert milliseconds[-1] - milliseconds[0] == 1


def test_id_timestamp_recovers_the_creation_time_to_the_millisecond():
    generator = IdGenerator(MAX_GENERATOR, clock=clock_at(NOW + 0.1234))
    assert id_timestamp(generator.next_id()) == pytest.approx(NOW + 0.123, abs=1e-6)


def test_a_clock_before_the_epoch_still_gives_valid_ids():
    generator = IdGenerator(1, clock=clock_at(EPOCH_MS / 1000 - 5))
    first, second = generator.next_id(), generator.next_id()
    assert 0 < first < second <= MAX_ID


@pytest.mark.parametrize("generator", [-1, MAX_GENERATOR + 1])
def test_a_generator_number_out_of_range_is_refused(generator):
    with pytest.raises(ValueError, match=f"generator {generator} out of range"):
        IdGenerator(generator)


def test_generators_from_one_redis_get_different_numbers():
    redis = fakeredis.FakeRedis()
    numbers = [generator_from_redis(redis).generator for _ in range(3)]
    assert numbers == [1, 2, 3]


def test_generator_numbers_from_redis_wrap_within_range():
    redis = fakeredis.FakeRedis()
    redis.set(keys.id_generator(), MAX_GENERATOR)
    assert generator_from_redis(redis).generator == 0


def test_renewed_generators_keep_one_number_for_a_second_then_take_the_next():
    redis = fakeredis.FakeRedis()
    clock, now = settable_clock(100.0)
    source = RenewedGenerators(redis, renew_s=1.0, clock=clock)
    assert redis.get(keys.id_generator()) is None  # nothing taken before the first request
    first = source.generator()
    now[0] += 0.999
    assert source.generator() is first and int(redis.get(keys.id_generator())) == 1
    now[0] += 0.001
    assert source.generator().generator == 2


@pytest.mark.parametrize("job_id", [0, 1, 57, 58, 12345678901234, MAX_ID])
def test_f58_round_trips_through_parse_job_id(job_id):
    text = f58(job_id)
    assert text.startswith("f")
    assert parse_job_id(text) == job_id


def test_f58_of_a_real_id_round_trips():
    job_id = IdGenerator(9, clock=clock_at()).next_id()
    assert parse_job_id(f58(job_id)) == job_id


def test_f58_uses_no_ambiguous_characters():
    text = f58(MAX_ID)[1:] + f58(123456789012345)[1:]
    assert not set(text) & set("0OIl")


def test_f58_of_small_numbers():
    assert (f58(0), f58(1), f58(58)) == ("f1", "f2", "f21")


@pytest.mark.parametrize(
    ("text", "job_id"),
    [
        ("12345", 12345),
        ("0", 0),
        (str(MAX_ID), MAX_ID),
        ("0x1f", 31),
        ("0X1F", 31),
        (hex(MAX_ID), MAX_ID),
        ("f21", 58),
        ("ƒ21", 58),
        ("  42\n", 42),
    ],
)
def test_parse_job_id_accepts_decimal_hex_and_f58(text, job_id):
    assert parse_job_id(text) == job_id


@pytest.mark.parametrize(
    "text",
    [
        "", "   ", "f", "abc", "12ab", "1.5", "0x", "0xg", "-0x1",
        "f0", "fO", "fI", "fl", "f-1", "0b101", "job42",
    ],
)
def test_parse_job_id_rejects_garbage(text):
    with pytest.raises(InvalidJobId, match="^invalid job id"):
        parse_job_id(text)


@pytest.mark.parametrize("text", ["-1", "-5"])
def test_parse_job_id_rejects_negative_numbers(text):
    with pytest.raises(InvalidJobId, match="^invalid job id"):
        parse_job_id(text)


@pytest.mark.parametrize("text", [str(MAX_ID + 1), hex(MAX_ID + 1), f58(MAX_ID + 1)])
def test_parse_job_id_rejects_too_large_ids(text):
    with pytest.raises(InvalidJobId, match="out of range$"):
        parse_job_id(text)
