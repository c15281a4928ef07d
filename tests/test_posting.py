"""Posting: one event's two writes (eventlog + journal) happen together or not at all."""

import pytest
import redis as redis_lib

from jobjournal.common import events as ev
from jobjournal.common import keys
from jobjournal.common.errors import LeaseLost
from jobjournal.common.keys import LEGACY
from jobjournal.common.layout import LEGACY as LEGACY_LAYOUT
from jobjournal.common.lease import Lease
from jobjournal.manager.posting import BATCH_EVENTS, EventPoster
from tests.helpers import assert_journal_matches_eventlogs, journal_entries


@pytest.fixture
def poster(redis):
    lease = Lease(redis, keys.manager_lease(), ttl=30)
    assert lease.try_acquire()
    return EventPoster(redis, LEGACY_LAYOUT, lease.token, journal_maxlen=0, renew=lambda: None)


def test_each_event_lands_in_its_eventlog_and_the_journal_under_one_id(redis, poster):
    poster.add(1, ev.Submit(timestamp=1.0, userid=5, urgency=16), public=b'{"command":["x"]}')
    poster.add(2, ev.Submit(timestamp=1.5, userid=6, urgency=16), public=b'{"command":["y"]}')
    poster.add(1, ev.Validate(timestamp=2.0))
    poster.flush()
    assert_journal_matches_eventlogs(redis)
    entries = journal_entries(redis)
    assert [(e.seq, e.job_id) for e in entries] == [(1, 1), (2, 2), (3, 1)]
    assert entries[0].jobspec == b'{"command":["x"]}'
    assert redis.xrange(LEGACY.job_eventlog(1))[0][1][b"data"] == b'{"command":["x"]}'
    assert redis.smembers(LEGACY.active_jobs()) == {b"1", b"2"}


def test_clean_moves_a_job_from_the_active_set_to_the_inactive_zset(redis, poster):
    poster.add(7, ev.Submit(timestamp=1.0, userid=5, urgency=16))
    poster.add(7, ev.Exception_(timestamp=2.0, type="cancel", severity=0))
    poster.add(7, ev.Clean(timestamp=3.0))
    poster.flush()
    assert redis.smembers(LEGACY.active_jobs()) == set()
    assert redis.zscore(LEGACY.inactive_jobs(), 7) == 3.0


def test_a_job_with_a_broken_key_is_set_aside_and_the_rest_of_the_batch_is_posted(redis, poster):
    redis.set(LEGACY.job_eventlog(3), "not a stream")
    redis.hset(LEGACY.job_environment(4), "not", "a string")
    poster.add(1, ev.Submit(timestamp=1.0, userid=5, urgency=16))
    poster.add(3, ev.Submit(timestamp=1.0, userid=5, urgency=16))
    poster.add(3, ev.Validate(timestamp=1.0))
    poster.add(4, ev.Submit(timestamp=1.0, userid=5, urgency=16), private=b'{"A": "1"}')
    poster.add(1, ev.Validate(timestamp=1.0))
    poster.flush("5-0")
    assert poster.take_set_aside() == [(3, f"{LEGACY.job_eventlog(3)} is a string, not a stream"),
                                       (4, f"{LEGACY.job_environment(4)} is a hash, not a string")]
    assert [fields[b"id"] for _, fields in redis.xrange(LEGACY.journal())] == [b"1", b"1"]
    assert redis.hget(LEGACY.journal_head(), "seq") == b"2" and redis.get(LEGACY.inbox_cursor()) == b"5-0"
    assert redis.type(LEGACY.job_eventlog(3)) == b"string" and not redis.exists(LEGACY.job_eventlog(4))
    assert redis.smembers(LEGACY.active_jobs()) == {b"1"}


@pytest.mark.parametrize("key", ["journal", "journal_head", "inbox_cursor", "active_jobs", "inactive_jobs"])
def test_a_partition_key_of_the_wrong_type_makes_a_batch_post_nothing(redis, poster, key):
    name = getattr(LEGACY, key)()
    redis.sadd(name, "x") if key != "active_jobs" else redis.set(name, "x")
    before = {k: redis.dump(k) for k in redis.keys("*")}
    poster.add(1, ev.Submit(timestamp=1.0, userid=5, urgency=16))
    poster.add(7, ev.Clean(timestamp=2.0))
    with pytest.raises(redis_lib.ResponseError, match=f"WRONGTYPE {name} .*nothing posted"):
        poster.flush("5-0")
    assert {k: redis.dump(k) for k in redis.keys("*")} == before


def test_a_poster_without_the_lease_is_fenced_off(redis, poster):
    stale = EventPoster(redis, LEGACY_LAYOUT, "someone-else", journal_maxlen=0, renew=lambda: None)
    stale.add(1, ev.Submit(timestamp=1.0, userid=5, urgency=16))
    with pytest.raises(LeaseLost):
        stale.flush()
    assert redis.xlen(LEGACY.journal()) == 0


def test_the_inbox_cursor_moves_with_the_last_batch(redis, poster, monkeypatch):
    cursors = []
    real_call = poster._call
    monkeypatch.setattr(
        poster, "_call", lambda part, k, a, cursor: (cursors.append(cursor), real_call(part, k, a, cursor))[1]
    )
    for job_id in range(BATCH_EVENTS + 10):
        poster.add(job_id, ev.Submit(timestamp=1.0, userid=5, urgency=16))
    poster.flush("42-0")
    assert cursors == ["", "42-0"], "two batches, the cursor with the last"
    assert redis.get(LEGACY.inbox_cursor()) == b"42-0"
    assert redis.xlen(LEGACY.journal()) == BATCH_EVENTS + 10
    assert redis.hget(LEGACY.journal_head(), "seq") == str(BATCH_EVENTS + 10).encode()
    assert_journal_matches_eventlogs(redis)


def test_a_capped_journal_is_trimmed_but_eventlogs_are_not(redis):
    lease = Lease(redis, keys.manager_lease(), ttl=30)
    lease.try_acquire()
    poster = EventPoster(redis, LEGACY_LAYOUT, lease.token, journal_maxlen=100, renew=lambda: None)
    for job_id in range(1000):
        poster.add(job_id, ev.Submit(timestamp=1.0, userid=5, urgency=16))
    poster.flush()
    assert redis.xlen(LEGACY.journal()) < 1000
    assert all(redis.xlen(LEGACY.job_eventlog(job_id)) == 1 for job_id in (0, 500, 999))


def test_a_second_submit_of_a_job_is_set_aside_and_the_rest_posted(redis, poster):
    poster.add(1, ev.Submit(timestamp=1.0, userid=5, urgency=16))
    poster.flush()
    poster.add(2, ev.Submit(timestamp=2.0, userid=5, urgency=16))
    poster.add(1, ev.Submit(timestamp=2.0, userid=5, urgency=16))
    poster.flush()
    assert poster.take_set_aside() == [(1, f"{LEGACY.job_eventlog(1)} exists: the job was submitted before")]
    assert redis.xlen(LEGACY.job_eventlog(1)) == 1 and redis.xlen(LEGACY.journal()) == 2  # job 2's went on


def test_a_job_whose_eventlog_is_ahead_of_the_journal_is_set_aside_before_anything_of_it_is_written(redis, poster):
    poster.add(1, ev.Submit(timestamp=1.0, userid=5, urgency=16))
    poster.flush()
    redis.xadd(LEGACY.job_eventlog(1), {"name": "bogus"}, id="99999999999999-0")
    poster.add(2, ev.Submit(timestamp=2.0, userid=5, urgency=16))
    poster.add(1, ev.Validate(timestamp=2.0))
    poster.flush("7-0")
    assert poster.take_set_aside() == [(1, f"{LEGACY.job_eventlog(1)} has entries after the journal")]
    assert redis.xlen(LEGACY.job_eventlog(1)) == 2 and redis.hget(LEGACY.journal_head(), "seq") == b"2"


def test_a_flush_writes_the_touched_partitions_and_the_cursor_to_the_others_now_and_then(redis, monkeypatch):
    from jobjournal.common.layout import create_layout
    from jobjournal.manager import posting
    from jobjournal.manager.fences import Fences
    from tests.helpers import SettableClock

    layout = create_layout(redis, 4)
    lease = Lease(redis, keys.manager_lease(), ttl=30)
    assert lease.try_acquire()
    Fences(redis, layout, lease).take()
    clock = SettableClock(100.0)
    poster = EventPoster(redis, layout, lease.token, journal_maxlen=0, renew=lambda: None, clock=clock)
    written = []
    real = posting.run_scripts
    monkeypatch.setattr(posting, "run_scripts", lambda client, calls: written.append(len(calls)) or real(client, calls))
    job = next(job_id for job_id in range(1, 100) if layout.partition_of(job_id).index == 2)

    def cursors() -> list:
        return [redis.get(part.inbox_cursor()) for part in layout.partitions]

    poster.add(job, ev.Submit(timestamp=1.0, userid=5, urgency=16))
    poster.flush("1-0")  # the first flush with a cursor writes it everywhere
    assert written == [4] and cursors() == [b"1-0"] * 4
    poster.add(job, ev.Validate(timestamp=1.0))
    poster.flush("2-0")
    assert written[-1] == 1, "one script call: the touched partition's"
    assert cursors() == [b"1-0", b"1-0", b"2-0", b"1-0"]
    poster.flush("3-0")  # nothing touched, too soon: nothing written
    assert written[-1] == 1 and cursors()[0] == b"1-0"
    clock.advance(posting.CURSOR_EVERY)
    poster.flush("4-0")
    assert written[-1] == 4 and cursors() == [b"4-0"] * 4
    poster.cursor_everywhere()  # an effect outside the poster (a purge) touched every partition
    poster.flush("5-0")
    assert written[-1] == 4 and cursors() == [b"5-0"] * 4, "at once, not a second later"
    logged = redis.xrange(layout.partitions[2].job_eventlog(job))
    assert [fields[b"name"] for _, fields in logged] == [b"submit", b"validate"]
