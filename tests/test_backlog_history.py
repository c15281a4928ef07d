"""The manager serves full journals from its memory of finished jobs: the same bytes as its eventlogs."""

import random

import msgspec

from jobjournal.common import consumers
from jobjournal.common import full_journal as fj
from jobjournal.common.keys import LEGACY
from jobjournal.common.reply_format import job_element
from jobjournal.manager import client
from jobjournal.manager.history import History
from tests.helpers import submit, wait_for, wait_inactive


def _raw_backlog(redis, **request) -> dict[int, bytes]:
    """A full journal's backlog as stored: job id -> the job's element of a `jobs` array."""
    consumer = consumers.new_consumer_name()
    fj.request_full_journal(redis, consumer, [LEGACY], **request)
    reply = LEGACY.journal_reply(consumer)

    def sentinel_arrived():
        last = redis.xrevrange(reply, count=1)
        return bool(last) and last[0][1][b"type"] == b"sentinel"

    wait_for(sentinel_arrived, what="the sentinel")
    entries = redis.xrange(reply)
    redis.delete(reply)
    consumers.forget_consumer(redis, LEGACY, consumer)
    arrays = [msgspec.json.decode(fields[b"jobs"], type=list[msgspec.Raw]) for _, fields in entries[:-1]]
    elements = [bytes(element) for array in arrays for element in array]
    return {msgspec.json.decode(element)["id"]: element for element in elements}


def _stop(manager) -> None:
    manager.stop.set()
    wait_for(lambda: not manager.leading.is_set(), what="the manager to step down")


def test_a_backlog_from_memory_has_the_bytes_its_eventlogs_give(redis, start_manager):
    first = start_manager()
    old = submit(redis, 20, sim={"runtime": 0, "exit_code": 3}) + submit(redis, 10)
    held = submit(redis, 3, urgency=0)
    wait_inactive(redis, old)
    _stop(first)

    second = start_manager()  # restores the held jobs; knows nothing of the old ones yet
    assert len(second.history) == 0
    client.cancel(redis, held, userid=1000)
    new = submit(redis, 5)
    wait_inactive(redis, held + new)
    wait_for(lambda: len(second.history) == 8, what="the finished jobs to be remembered")
    read_once = _raw_backlog(redis)
    assert len(second.history) == 38, "a backlog remembers the inactive jobs it read"
    from_memory = _raw_backlog(redis)
    _stop(second)

    start_manager(backlog_cache_mb=0)
    from_eventlogs = _raw_backlog(redis)
    assert sorted(from_eventlogs) == sorted(old + held + new)
    assert read_once == from_memory == from_eventlogs


def test_an_active_job_is_read_from_its_eventlog_and_remembered_once_inactive(redis, start_manager):
    manager = start_manager()
    [held] = submit(redis, 1, urgency=0)
    wait_for(lambda: redis.sismember(LEGACY.active_jobs(), held), what="the held job")
    assert held in _raw_backlog(redis) and manager.history.sealed(held) is None
    client.set_urgency(redis, held, 16, userid=1000)
    wait_inactive(redis, [held])
    wait_for(lambda: manager.history.sealed(held) is not None, what="the job to be remembered")
    assert b'"name":"clean"' in _raw_backlog(redis)[held]


def test_a_purged_job_is_forgotten_and_left_out_of_the_next_backlog(redis, start_manager):
    manager = start_manager()
    job_ids = submit(redis, 4)
    wait_inactive(redis, job_ids)
    wait_for(lambda: len(manager.history) == 4, what="the jobs to be remembered")
    client.purge(redis, job_ids[:2], force=True)
    assert sorted(_raw_backlog(redis)) == sorted(job_ids[2:])
    assert [manager.history.sealed(j) is None for j in job_ids] == [True, True, False, False]


def test_a_filtered_backlog_reads_eventlogs_and_leaves_the_memory_alone(redis, start_manager):
    manager = start_manager()
    job_ids = submit(redis, 2)
    wait_inactive(redis, job_ids)
    wait_for(lambda: len(manager.history) == 2, what="the jobs to be remembered")
    entries = _raw_backlog(redis, allow=["submit"])
    assert [len(msgspec.json.decode(element)["eventlog"]) for element in entries.values()] == [1, 1]
    assert b'"name":"clean"' in manager.history.sealed(job_ids[0])


def test_the_memory_drops_the_oldest_entries_beyond_its_budget():
    entry = random.Random(1).randbytes(400)  # does not deflate: ~400 bytes kept
    history = History(budget_bytes=3 * 600)
    for job_id in range(5):
        history.remember(job_id, entry)
    assert [history.sealed(j) is not None for j in range(5)] == [False, False, True, True, True]
    size = history.size
    history.remember(4, entry)
    assert history.size == size, "remembering a job again replaces it"
    history.forget([2, 3, 4, 99])
    assert len(history) == 0 and history.size == 0


def test_a_typical_finished_job_takes_under_300_bytes_of_the_budget():
    history = History(budget_bytes=10**6)
    history.record(1015501940898923600, "submit", "1796300000.1234567", b'{"userid":2001,"urgency":16,"version":2}',
                   b'{"command":["app","3"],"queue":"debug","name":"app3","sim":{"runtime":0.0}}', final=False)
    for name, stamp in (("validate", "1796300000.1250001"), ("depend", "1796300000.1301234"),
                        ("priority", "1796300000.1359876"), ("alloc", "1796300000.2001234")):
        history.record(1015501940898923600, name, stamp, b"{}", b'{"version":1,"execution":{"R_lite":[{"rank":"7",'
                       b'"children":{"core":"12"}}],"nodelist":["node7"],"starttime":1796300000.2001234,'
                       b'"expiration":0.0}}' if name == "alloc" else b"", final=False)
    for name, stamp in (("start", "1796300000.2001234"), ("finish", "1796300000.3120001"),
                        ("release", "1796300000.3150002"), ("free", "1796300000.3150002")):
        history.record(1015501940898923600, name, stamp, b'{"status":0}' if name == "finish" else b"{}", b"",
                       final=False)
    history.record(1015501940898923600, "clean", "1796300000.3150002", b"{}", b"", final=True)
    element = history.sealed(1015501940898923600)
    assert element.startswith(b'{"id":1015501940898923600,"eventlog":[{"name":"submit"') and len(element) > 700
    assert history.size < 300  # deflated against the dictionary of a typical element


def test_a_memory_budget_of_zero_remembers_nothing():
    history = History(budget_bytes=0)
    history.record(1, "submit", "1.0", b'{"userid":1}', b'{"command":["x"]}', final=False)
    history.record(1, "clean", "2.0", b"{}", b"", final=True)
    assert len(history) == 0 and history.size == 0


def test_a_sealed_entry_holds_the_events_jobspec_and_r_as_posted():
    history = History(budget_bytes=10**6)
    history.record(7, "submit", "1.5", b'{"userid":1,"urgency":16}', b'{"command":["x"]}', final=False)
    history.record(7, "alloc", "2.5", b"{}", b'{"version":1}', final=False)
    history.record(7, "clean", "3.0", b"{}", b"", final=True)
    eventlog = (
        b'[{"name":"submit","timestamp":1.5,"userid":1,"urgency":16},'
        b'{"name":"alloc","timestamp":2.5},{"name":"clean","timestamp":3.0}]'
    )
    assert history.sealed(7) == job_element(7, eventlog, b'{"command":["x"]}', b'{"version":1}')
    assert history.sealed(7) == b'{"id":7,"eventlog":' + eventlog + b',"jobspec":{"command":["x"]},"R":{"version":1}}'


def test_entries_read_back_from_redis_never_push_out_remembered_ones():
    entry = random.Random(1).randbytes(400)  # does not deflate: ~400 bytes kept
    history = History(budget_bytes=3 * 600)
    for job_id in range(3):
        history.remember(job_id, entry)
    history.remember(7, entry, evict=False)
    assert history.sealed(7) is None and all(history.sealed(j) for j in range(3))
    history.forget([0])
    history.remember(7, entry, evict=False)
    assert history.sealed(7) == entry
