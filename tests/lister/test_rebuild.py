"""However the view was reached, it equals the view rebuilt from scratch (invariant 3),
and a consumer behind a trimmed journal resyncs instead of skipping (invariant 5)."""

import random
import threading
import time

import pytest

from jobjournal.common import keys
from jobjournal.common.errors import LeaseLost
from jobjournal.common.keys import LEGACY
from jobjournal.lister import query as q
from jobjournal.lister.model import JobView
from jobjournal.lister.view import BulkWriter, delete_generation
from jobjournal.manager import client
from tests.helpers import (
    current_view,
    naive_view,
    names,
    recording,
    submit,
    wait_caught_up,
    wait_for,
    wait_inactive,
)


def _mixed_workload(redis, count: int = 60) -> list[int]:
    """Jobs that complete, fail, time out, get canceled (pending and running) and are held."""
    rng = random.Random(3)
    ids = []
    for _ in range(count // 6):
        ids += submit(redis, sim={"runtime": rng.choice([0, 0.01])})
        ids += submit(redis, sim={"runtime": 0, "exit_code": 2}, queue="batch", name="bad")
        ids += submit(redis, duration=0.01, sim={"runtime": 5})
        ids += submit(redis, userid=2000, sim={"runtime": 30})
        ids += submit(redis, urgency=0, userid=2000)
    return ids


def _settle_and_cancel(redis, ids):
    wait_for(lambda: all(names(redis, j)[-1] not in ("submit", "validate", "depend") for j in ids))
    client.cancel(redis, ids[3::5], userid=0)  # running ones
    wait_inactive(redis, ids[3::5])


def _stop(worker) -> None:
    """Stop a lister worker started by start_lister and wait until it no longer applies."""
    worker.stop.set()
    wait_for(lambda: not worker.applying.is_set())


def _a_lister_stopped_after(redis, start_manager, start_lister, jobs: int, **manager_settings):
    """Start a manager, and a lister that views `jobs` finished jobs and is then stopped."""
    start_manager(**manager_settings)
    lister = start_lister()
    wait_inactive(redis, submit(redis, jobs))
    wait_caught_up(redis)
    _stop(lister)
    return lister


def test_a_view_built_from_a_full_journal_equals_the_naive_walk(redis, start_manager, start_lister):
    start_manager()
    ids = _mixed_workload(redis)
    _settle_and_cancel(redis, ids)
    client.purge(redis, ids[:3], force=True)
    start_lister()
    wait_caught_up(redis)
    view = current_view(redis)
    assert view == naive_view(redis)
    assert len(view["jobs"]) == len(ids) - 3
    assert q.stats(redis)["inactive_purged"] == 3


def test_a_view_kept_live_under_load_equals_the_naive_walk(redis, start_manager, start_lister):
    start_manager()
    start_lister()
    ids = _mixed_workload(redis, 120)
    _settle_and_cancel(redis, ids)
    client.purge(redis, ids[:5], force=True)
    client.cancel(redis, ids[4::5], userid=0)  # held ones, canceled while pending
    wait_inactive(redis, ids[4::5])
    wait_caught_up(redis)
    assert current_view(redis) == naive_view(redis)


def test_a_restarted_lister_resumes_from_its_cursor_without_a_full_journal(redis, start_manager, start_lister):
    first = _a_lister_stopped_after(redis, start_manager, start_lister, 20)
    generation = first.generation
    more = submit(redis, 10)
    wait_inactive(redis, more)
    second = start_lister()
    wait_caught_up(redis)
    assert second.generation == generation, "no rebuild: the same generation goes on"
    assert int(redis.get(LEGACY.view_generation_counter())) == generation
    assert current_view(redis) == naive_view(redis)


def test_a_lister_behind_a_trimmed_journal_rebuilds_into_a_new_generation(redis, start_manager, start_lister, caplog):
    first = _a_lister_stopped_after(redis, start_manager, start_lister, 5, journal_maxlen=50)
    old_generation = first.generation
    wait_inactive(redis, submit(redis, 40))  # 400 events: the journal is trimmed past the cursor
    assert int(redis.xrange(LEGACY.journal(), count=1)[0][1][b"seq"]) > 60
    second = start_lister()
    wait_caught_up(redis)
    assert second.generation != old_generation
    assert "journal gap" in caplog.text
    # deleted after the switch to the new one, which the wait above may see first
    wait_for(lambda: not list(redis.scan_iter(match=LEGACY.view_pattern(old_generation))), what="the old one deleted")
    assert current_view(redis) == naive_view(redis)
    assert q.stats(redis)["inactive"] == 45


def test_a_view_of_an_older_format_is_rebuilt(redis, start_manager, start_lister):
    first = _a_lister_stopped_after(redis, start_manager, start_lister, 3)
    redis.hset(LEGACY.view_meta(first.generation), "version", 3)
    redis.delete(LEGACY.view_users(first.generation))  # format 3 had no users set
    second = start_lister()
    assert second.generation != first.generation
    assert current_view(redis) == naive_view(redis)
    assert not list(redis.scan_iter(match=LEGACY.view_pattern(first.generation)))


def test_deleting_a_generation_leaves_none_of_its_keys_and_scans_nothing(redis, start_manager, start_lister):
    start_manager()
    worker = start_lister()
    _settle_and_cancel(redis, _mixed_workload(redis))  # two users; pending, running, every result
    wait_caught_up(redis)
    _stop(worker)
    generation = worker.generation
    users = {int(userid) for userid in redis.smembers(LEGACY.view_users(generation))}
    assert users == {1000, 2000}
    scans = _calls(redis, "scan")
    assert delete_generation(redis, LEGACY, generation) > 10
    assert _calls(redis, "scan") == scans
    assert not list(redis.scan_iter(match=LEGACY.view_pattern(generation)))


def test_a_delete_cut_short_is_finished_by_the_next_one(redis):
    with BulkWriter(redis, LEGACY, 3) as writer:
        for userid in range(400):  # 1200 user lists: more than one page of names
            writer.add(JobView(id=userid + 1, userid=userid, state="INACTIVE", t_inactive=1.0))
        writer.finish("1-0", 1)

    def lease_lost_after_a_page():
        raise LeaseLost("lost the lease")

    with pytest.raises(LeaseLost):
        delete_generation(redis, LEGACY, 3, lease_lost_after_a_page)
    assert redis.exists(LEGACY.view_users(3))
    delete_generation(redis, LEGACY, 3)
    assert redis.keys("*") == []


def test_a_live_view_whose_user_had_every_job_purged_still_equals_a_rebuild(redis, start_manager, start_lister):
    start_manager()
    start_lister()
    gone = submit(redis, 2, userid=3000)
    kept = submit(redis, 2)
    wait_inactive(redis, gone + kept)
    client.purge(redis, gone, force=True)
    wait_caught_up(redis)
    assert current_view(redis) == naive_view(redis)


def test_a_generation_of_format_3_without_a_users_set_is_deleted_by_scanning(redis):
    old = [LEGACY.view_jobs(7), LEGACY.view_list(7, "inactive"), LEGACY.view_user_list(7, 5, "inactive"),
           LEGACY.view_meta(7)]
    redis.hset(old[0], 1, "{}")
    redis.zadd(old[1], {"1": 1.0})
    redis.zadd(old[2], {"1": 1.0})
    redis.hset(old[3], "version", 3)
    redis.hset(LEGACY.view_jobs(8), 1, "{}")  # another generation's
    assert delete_generation(redis, LEGACY, 7) == 4
    assert redis.keys("*") == [LEGACY.view_jobs(8).encode()]


def _calls(redis, command: str) -> int:
    return redis.info("commandstats").get(f"cmdstat_{command}", {}).get("calls", 0)


def test_readers_keep_the_old_generation_until_the_new_one_is_complete(redis, start_manager, start_lister):
    _a_lister_stopped_after(redis, start_manager, start_lister, 5, journal_maxlen=50)
    wait_inactive(redis, submit(redis, 300))
    seen = []
    stop = threading.Event()

    def read_stats():
        while not stop.is_set():
            seen.append(q.stats(redis, timeout=30)["total"])

    reader = threading.Thread(target=read_stats)
    reader.start()
    try:
        start_lister()
        wait_caught_up(redis)
    finally:
        stop.set()
        reader.join()
    assert set(seen) <= {5, 305}, "every answer comes from one whole generation"
    assert seen[-1] == 305


def test_a_query_during_initialization_waits_and_then_sees_every_job(redis, start_manager, start_lister):
    start_manager()
    ids = submit(redis, 2000)
    wait_inactive(redis, ids, timeout=30)
    answers = []
    asker = threading.Thread(
        target=lambda: answers.append(q.list_jobs(redis, q.ListQuery(attrs=["id"]), timeout=30))
    )
    with recording(redis) as commands:
        asker.start()
        # the query had its chance: it looked for a view, and again (no lister runs, so there is none)
        wait_for(lambda: list(commands).count(f"GET {LEGACY.view_current()}") >= 2, what="the query to look")
    assert not answers and asker.is_alive(), "the query waits: nothing to answer from yet"
    start_lister(wait=False)
    asker.join(30)
    assert sorted(row["id"] for row in answers[0]) == sorted(ids)


def test_a_query_that_waits_too_long_says_how_far_initialization_got(redis):
    from jobjournal.lister.errors import ViewNotReady

    with pytest.raises(ViewNotReady, match="is `jobjournal lister` running"):
        q.stats(redis, timeout=0.1)
    redis.hset(LEGACY.view_building(), mapping={"generation": 1, "jobs": 1234, "started": time.time()})
    with pytest.raises(ViewNotReady, match="still initializing after 0.1s: 1234 jobs loaded"):
        q.list_jobs(redis, q.ListQuery(), timeout=0.1)


def test_a_corrupt_journal_entry_is_set_aside_and_the_lister_goes_on(redis, start_manager, start_lister):
    start_manager()
    worker = start_lister()
    wait_inactive(redis, submit(redis, 2))
    wait_caught_up(redis)
    seq = int(redis.hget(LEGACY.journal_head(), "seq")) + 1
    redis.xadd(LEGACY.journal(), {"v": 1, "seq": seq, "id": 5, "name": "bogus", "timestamp": 1, "context": "{}"})
    redis.hset(LEGACY.journal_head(), mapping={"seq": seq, "last_id": redis.xrevrange(LEGACY.journal(), count=1)[0][0]})
    wait_inactive(redis, submit(redis, 2))
    wait_caught_up(redis)
    assert worker.applying.is_set()
    [(_, letter)] = redis.xrange(keys.dead_letters())
    assert letter[b"source"] == LEGACY.journal().encode() and b"bogus" in letter[b"reason"]
    assert q.stats(redis)["inactive"] == 4


@pytest.mark.parametrize(
    "foreign",
    [{"v": 1, "seq": 999, "id": 5, "name": "submit", "timestamp": 1, "context": "{}"},  # a seq never written
     {"v": 1, "seq": 1, "id": 5, "name": "submit", "timestamp": 1, "context": "{}"},  # a seq gone back
     {"hello": "world"}],  # no seq at all
)
def test_a_journal_entry_that_is_not_the_managers_is_set_aside_once_without_a_rebuild(
    redis, start_manager, start_lister, foreign
):
    start_manager()
    worker = start_lister()
    wait_inactive(redis, submit(redis, 2))
    wait_caught_up(redis)
    generation = worker.generation
    redis.xadd(LEGACY.journal(), foreign)
    wait_inactive(redis, submit(redis, 2))
    wait_caught_up(redis)
    assert worker.generation == generation, "no rebuild"
    [(_, letter)] = redis.xrange(keys.dead_letters())
    assert letter[b"source"] == LEGACY.journal().encode() and b"not the manager's" in letter[b"reason"]
    assert q.stats(redis)["inactive"] == 4


def test_a_corrupt_backlog_entry_is_set_aside_and_the_rest_is_built(redis, start_manager, start_lister, monkeypatch):
    from jobjournal.common import inbox, messages
    from jobjournal.lister import partition_view

    start_manager()
    job_ids = submit(redis, 3)
    wait_inactive(redis, job_ids)
    def garbage_then_request(redis_, consumer, *args):
        redis_.delete(LEGACY.journal_reply(consumer))
        redis_.xadd(LEGACY.journal_reply(consumer), {"type": "job", "id": "x", "eventlog": "not json"})
        inbox.send(redis_, messages.JournalRequest(consumer=consumer))

    monkeypatch.setattr(partition_view, "request_full_journal", garbage_then_request)
    start_lister()
    wait_caught_up(redis)
    [(_, letter)] = redis.xrange(keys.dead_letters())
    assert letter[b"source"].startswith(b"jj:journal:reply:") and letter[b"reason"]
    assert q.stats(redis)["inactive"] == 3


def test_the_journal_is_kept_from_a_stopped_listers_cursor_and_trimmed_once_read(redis, start_manager, start_lister):
    first = _a_lister_stopped_after(redis, start_manager, start_lister, 5, journal_keep_s=0)
    wait_inactive(redis, submit(redis, 50))
    with recording(redis) as commands:  # a trim pass of the manager, after those 50 jobs
        wait_for(lambda: any(c.startswith(f"XTRIM {LEGACY.journal()} ") for c in list(commands)), what="a trim")
    second = start_lister()
    wait_caught_up(redis)
    assert second.generation == first.generation, "nothing it had not read was trimmed"
    wait_for(lambda: redis.xlen(LEGACY.journal()) < 100, what="what every consumer has read to be trimmed")
