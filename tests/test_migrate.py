"""`jobjournal migrate`: a legacy store with active and inactive jobs, copied into a partitioned one
on a Redis Cluster, goes on there as if nothing had happened; the old store is left as it was."""

import threading
import time

import pytest

from jobjournal.common import inbox, keys, messages
from jobjournal.common.connection import connect
from jobjournal.common.keys import LEGACY
from jobjournal.common.layout import read_layout
from jobjournal.common.settings import Settings
from jobjournal.lister import query as q
from jobjournal.lister.worker import ListerWorker
from jobjournal.manager import client
from jobjournal.manager.manager import Manager
from jobjournal.manager.migrate import MigrationError, migrate
from tests.helpers import (
    assert_journal_matches_eventlogs,
    current_view,
    eventlog,
    naive_view,
    submit,
    wait_caught_up,
    wait_for,
    wait_inactive,
)


def _snapshot(redis) -> dict:
    """Every key of a store with its type and size, to show it did not change."""
    sizes = {"stream": redis.xlen, "set": redis.scard, "zset": redis.zcard, "hash": redis.hlen,
             "string": redis.strlen, "list": redis.llen}
    return {key: sizes[redis.type(key).decode()](key) for key in redis.scan_iter(count=1000)}


@pytest.fixture
def legacy_store(redis, start_manager):
    """A legacy store: 30 finished jobs, 10 held ones, and a cancel still in the inbox."""
    manager = start_manager()
    done = submit(redis, 20) + submit(redis, 10, sim={"runtime": 0, "exit_code": 3})
    held = submit(redis, 10, urgency=0)
    wait_inactive(redis, done)
    wait_for(lambda: all(ev.__struct_config__.tag == "priority" for ev in (eventlog(redis, j)[-1] for j in held)),
             what="the held jobs to wait")
    manager.stop.set()
    wait_for(lambda: not redis.exists(LEGACY.manager_fence()), what="the manager to let go of its lease")
    inbox.send(redis, messages.Cancel(ids=[held[0]], userid=1000, note="sent while stopped"))
    return done, held


@pytest.fixture
def cluster(cluster_url, tmp_path):
    settings = Settings(redis_url=cluster_url, home=str(tmp_path), lease_ttl=1.0, journal_keep_s=3600)
    store = connect(settings)
    store.flushall()
    stop, threads = threading.Event(), []

    def start(service):
        threads.append(threading.Thread(target=service(connect(settings), settings).run, args=(stop,), daemon=True))
        threads[-1].start()

    yield store, start
    stop.set()
    for thread in threads:
        thread.join(30)
    store.close()


def test_a_migrated_store_goes_on_on_a_cluster_and_the_old_one_is_untouched(redis, legacy_store, cluster):
    done, held = legacy_store
    store, start = cluster
    before = _snapshot(redis)
    copied = migrate(redis, store, 8)
    assert (copied["jobs"], copied["active"]) == (40, 10) and copied["inbox"] >= 1
    assert _snapshot(redis) == before, "the old store is only read"
    layout = read_layout(store)
    assert layout.size == 8
    for part in layout.partitions:
        assert_journal_matches_eventlogs(store, part)
    start(Manager)
    start(ListerWorker)
    wait_inactive(store, [held[0]])  # the cancel sent while stopped is handled by the new manager
    for job_id in held[1:]:
        client.set_urgency(store, job_id, 16, userid=1000)
    wait_inactive(store, held)
    wait_caught_up(store)
    stats = q.stats(store)
    assert (stats["inactive"], stats["failed"], stats["canceled"]) == (40, 10, 1)
    for part in layout.partitions:
        assert_journal_matches_eventlogs(store, part)
        assert current_view(store, part) == naive_view(store, part)
    assert sorted(row["id"] for row in q.list_jobs(store, q.ListQuery(attrs=["id"]))) == sorted(done + held)


def test_migrating_refuses_while_a_manager_runs_or_into_a_store_that_is_not_empty(redis, start_manager, cluster):
    store, _ = cluster
    start_manager()
    with pytest.raises(MigrationError, match="manager holds"):
        migrate(redis, store, 4)
    redis.delete(LEGACY.manager_fence())
    store.set("something", 1)
    with pytest.raises(MigrationError, match="not empty"):
        migrate(redis, store, 4)


def test_the_migrate_command_copies_and_says_what(redis, legacy_store, cluster, cli, cluster_url):
    result = cli("migrate", "--partitions", "4", "--to", cluster_url)
    assert result.exit_code == 0, result.output
    assert "copied 40 jobs (10 active)" in result.output
    assert read_layout(cluster[0]).size == 4


def test_migrating_refuses_while_a_lister_or_an_ingest_worker_runs(redis, cluster, spawn):
    store, _ = cluster
    redis.zadd(keys.lister_members(), {"host:1:lister": time.time()})
    with pytest.raises(MigrationError, match="lister workers are running"):
        migrate(redis, store, 4)
    redis.delete(keys.lister_members())
    spawn("worker", "--queue", "ingest")
    wait_for(lambda: redis.scard("rq:workers"), what="the ingest worker to register")
    with pytest.raises(MigrationError, match=r"1 rq worker\(s\) serve the ingest queue"):
        migrate(redis, store, 4)
    assert not list(store.scan_iter(count=100)), "nothing was copied"
