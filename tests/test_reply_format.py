"""A full journal's reply: a hundred jobs or so an entry (version 2), one a job for older consumers."""

from pathlib import Path

import msgspec
import pytest

from jobjournal.common import consumers, keys, messages
from jobjournal.common import full_journal as fj
from jobjournal.common import reply_format as rf
from jobjournal.common.errors import CorruptEntry
from jobjournal.common.keys import LEGACY
from jobjournal.lister import query as q
from jobjournal.manager.backlog import append
from tests.helpers import submit, wait_caught_up, wait_for, wait_inactive

EVENTLOG = b'[{"name":"submit","timestamp":1.5,"userid":1000,"urgency":16},{"name":"validate","timestamp":1.6}]'


def _element(job_id: int) -> bytes:
    return rf.job_element(job_id, EVENTLOG, b'{"command":["x"]}', b"")


def _written(redis, elements: list[bytes], version: int = 2) -> list[dict]:
    """Write the entries for `elements` to a reply stream; its entries' fields, in order."""
    stream = LEGACY.journal_reply("format-test")
    redis.delete(stream)
    entries = rf.entries(elements, version)
    append(redis, stream, 60, _numbered(entries, version), first=True)
    return [fields for _, fields in redis.xrange(stream)]


def _numbered(entries: list, version: int = 2) -> list:
    return [(rf.entry_id(ordinal, version), fields) for ordinal, fields in enumerate(entries, 1)]


def _decoded(entries: list[dict]) -> list:
    return [item for index, fields in enumerate(entries) for item in rf.decode_reply_entry(f"{index}-0", fields)]


def test_a_reply_packs_a_hundred_jobs_an_entry_and_decodes_back_in_order(redis):
    entries = _written(redis, [_element(j) for j in range(250)])
    assert [(f[b"v"], f[b"type"]) for f in entries] == [(b"2", b"jobs")] * 3
    assert [f[b"count"] for f in entries] == [b"100", b"100", b"50"]
    jobs = _decoded(entries)
    assert [job.job_id for job in jobs] == list(range(250))
    assert [type(e).__name__ for e in jobs[0].events] == ["Submit", "Validate"]
    assert bytes(jobs[0].jobspec) == b'{"command":["x"]}' and not jobs[0].R


def test_an_entry_closes_early_once_its_jobs_reach_the_byte_limit(redis, monkeypatch):
    monkeypatch.setattr(rf, "ENTRY_BYTES", 3 * len(_element(0)))
    entries = _written(redis, [_element(j) for j in range(7)])
    assert [int(f[b"count"]) for f in entries] == [3, 3, 1]


def test_a_job_that_does_not_decode_is_unreadable_and_the_others_of_its_entry_still_count(redis):
    stray = rf.unreadable_element(2, "an eventlog entry lacks a field")
    entries = _written(redis, [_element(1), stray, _element(3)])
    assert len(entries) == 1
    first, bad, last = rf.decode_reply_entry("1-0", entries[0])
    assert (first.job_id, last.job_id) == (1, 3)
    assert isinstance(bad, rf.Unreadable) and "job 2" in bad.problem and "eventlog" in bad.problem


def test_an_entry_whose_count_disagrees_with_its_jobs_is_corrupt():
    fields = {b"v": b"2", b"type": b"jobs", b"count": b"2", b"jobs": b"[" + _element(1) + b"]"}
    with pytest.raises(CorruptEntry, match="1 jobs where the entry says 2"):
        rf.decode_reply_entry("1-0", fields)


def test_a_version_1_reply_has_one_entry_a_job_with_the_same_content(redis):
    stray = rf.unreadable_element(3, "its eventlog is not valid JSON")
    entries = _written(redis, [_element(1), _element(2), stray], version=1)
    assert [(f[b"v"], f[b"type"], f[b"id"]) for f in entries] == [(b"1", b"job", b"1"), (b"1", b"job", b"2"),
                                                                    (b"1", b"job", b"3")]
    assert entries[0][b"eventlog"] == EVENTLOG and entries[0][b"jobspec"] == b'{"command":["x"]}'
    v2 = _decoded(_written(redis, [_element(1)]))
    assert rf.decode_reply_entry("1-0", entries[0]) == v2
    with pytest.raises(CorruptEntry):
        rf.decode_reply_entry("3-0", entries[2])


def test_version_2_entries_are_numbered_and_the_sentinel_has_the_last_id_there_is(redis, start_manager, monkeypatch):
    monkeypatch.setattr(rf, "ENTRY_JOBS", 2)
    start_manager()
    wait_inactive(redis, submit(redis, 5))
    consumer = consumers.new_consumer_name()
    fj.request_full_journal(redis, consumer, [LEGACY])
    stream = LEGACY.journal_reply(consumer)
    wait_for(lambda: redis.xlen(stream) == 4, what="the reply")
    ids = [entry_id for entry_id, _ in redis.xrange(stream)]
    assert ids == [b"1-0", b"2-0", b"3-0", rf.SENTINEL_ID.encode()]
    assert redis.xread({stream: "99-0"}, count=1)[0][1][0][1][b"type"] == b"sentinel"


def test_later_entries_of_a_reply_its_consumer_deleted_are_refused(redis):
    stream = LEGACY.journal_reply("given-up")
    entries = _numbered(rf.entries([_element(1)], 2))
    with pytest.raises(Exception, match="GONE"):
        append(redis, stream, 60, entries, first=False)
    assert not redis.exists(stream)


def test_a_reply_stream_someone_else_wrote_to_is_refused_and_left_alone(redis):
    stream = LEGACY.journal_reply("squatted")
    redis.xadd(stream, {"type": "noise"}, id="5-0")
    entries = _numbered(rf.entries([_element(j) for j in range(3)], 2) * 6)
    with pytest.raises(Exception, match="BADREPLY"):
        append(redis, stream, 60, entries, first=True)
    assert [entry_id for entry_id, _ in redis.xrange(stream)] == [b"5-0"]
    redis.delete(stream)


def test_a_request_without_a_reply_version_gets_version_1_entries(redis, start_manager):
    start_manager()
    job_ids = submit(redis, 3)
    wait_inactive(redis, job_ids)
    stream = LEGACY.journal_reply("old-consumer")
    redis.xadd(keys.manager_inbox(), {"msg": b'{"request":"journal","consumer":"old-consumer"}'})
    wait_for(lambda: redis.xlen(stream) == 4, what="the reply")
    entries = [fields for _, fields in redis.xrange(stream)]
    assert [f[b"type"] for f in entries] == [b"job"] * 3 + [b"sentinel"]
    assert sorted(int(f[b"id"]) for f in entries[:3]) == sorted(job_ids)
    assert entries[-1][b"v"] == b"1"
    assert messages.JournalRequest(consumer="c").reply_version == 1


def _rewrite_second_entry(redis, job_id: int, change) -> None:
    """Store a job's eventlog again, with `change(fields)` in place of its second entry."""
    key = LEGACY.job_eventlog(job_id)
    entries = redis.xrange(key)
    redis.delete(key)
    for index, (entry_id, fields) in enumerate(entries):
        redis.xadd(key, change(fields) if index == 1 else fields, id=entry_id)


def test_a_corrupt_eventlog_sets_aside_its_job_alone_and_the_rest_is_built(redis, start_manager, start_lister):
    start_manager(backlog_cache_mb=0)  # every job is read back from its eventlog
    job_ids = submit(redis, 5)
    wait_inactive(redis, job_ids)
    _rewrite_second_entry(redis, job_ids[1], lambda fields: {**fields, b"context": b"{oops"})
    _rewrite_second_entry(redis, job_ids[3], lambda fields: {k: v for k, v in fields.items() if k != b"name"})
    start_lister()
    wait_caught_up(redis)
    assert q.stats(redis)["inactive"] == 3
    letters = [fields for _, fields in redis.xrange(keys.dead_letters())]
    assert len(letters) == 2 and all(f[b"source"].startswith(b"jj:journal:reply:") for f in letters)
    assert any(b"lacks a field" in f[b"reason"] for f in letters)
    assert msgspec.json.decode(rf.unreadable_element(7, "x")) == {"id": 7, "problem": "x"}


def test_a_reply_stays_out_of_the_aof_and_goes_away_by_itself(redis):
    aof = Path(redis.config_get("dir")["dir"]) / redis.config_get("appendfilename")["appendfilename"]
    if redis.config_get("appendonly")["appendonly"] != "yes" or not aof.exists():
        pytest.skip("needs the AOF of a local server")
    stream = LEGACY.journal_reply("kept-out-of-the-aof")
    append(redis, stream, 60, _numbered(rf.entries([_element(1)], 2)), first=True)
    redis.xadd("jj:test:persisted", {"a": "1"})  # a plain write: it does reach the AOF
    assert redis.xlen(stream) == 1 and 0 < redis.ttl(stream) <= 60
    wait_for(lambda: b"jj:test:persisted" in aof.read_bytes(), what="the AOF write")
    assert stream.encode() not in aof.read_bytes()
    redis.delete("jj:test:persisted")
