"""Scale-out under faults: lister workers dying, joining, being fenced off a partition, and a
partition's journal losing entries its view had not applied. Real servers only; every wait has a
deadline (tests/helpers.py wait_for) and nothing is asserted on how fast it happened."""

import os
import signal
import time

import pytest

from jobjournal.common import keys
from jobjournal.common.connection import connect
from jobjournal.common.journal import journal_head
from jobjournal.common.layout import create_layout
from jobjournal.common.settings import Settings
from jobjournal.lister.membership import owner
from tests.helpers import current_view, naive_view, submit, view_seq, wait_caught_up, wait_for, wait_inactive

LEASE_TTL = 1.0
"""The spawn fixture's JOBJOURNAL_LEASE_TTL, and the settings fixture's lease_ttl."""


def _pid_of(name: str) -> int:
    """The pid in a worker name or lease token (`host:pid:random`, common/lease.py)."""
    return int(name.split(":")[-2])


def _holders(redis, parts) -> dict[int, int | None]:
    """Partition index -> pid of its lister lease's holder (None: nobody holds it)."""
    tokens = [redis.get(part.lister_lease()) for part in parts]
    return {part.index: (_pid_of(token.decode()) if token else None) for part, token in zip(parts, tokens, strict=True)}


def _live_members(redis, ttl: float = LEASE_TTL) -> list[str]:
    """Members whose last beat is within the TTL: those the workers divide the partitions among
    (lister/membership.py)."""
    return sorted(m.decode() for m in redis.zrangebyscore(keys.lister_members(), time.time() - ttl, "+inf"))


def _generations(redis, parts) -> dict[int, bytes | None]:
    return {part.index: redis.get(part.view_current()) for part in parts}


# -- 1. a worker process dies on a 3-master cluster
@pytest.mark.timeout(120)  # it runs in ~5 s; the bound lets each wait's own deadline report first
def test_a_killed_lister_process_s_partitions_are_taken_over_and_every_view_equals_the_walk(
    cluster_url, redis_url, spawn
):
    redis = connect(Settings(redis_url=cluster_url))
    try:
        redis.flushall()
        layout = create_layout(redis, 16)
        parts = layout.partitions
        # rq's queues on the session's standalone Redis: without JOBJOURNAL_QUEUE_REDIS_URL a manager on
        # a cluster starts an embedded server for them, a daemon outside the spawned process group
        env = {"JOBJOURNAL_REDIS_URL": cluster_url, "JOBJOURNAL_QUEUE_REDIS_URL": redis_url,
               "JOBJOURNAL_PARTITIONS": "16"}
        spawn("manager", env=env)
        wait_inactive(redis, submit(redis, 60))
        listers = {proc.pid: proc for proc in (spawn("lister", env=env) for _ in range(3))}

        def stable(pids: set[int]) -> dict[int, int] | None:
            """Partition -> holder pid once the live members are exactly the workers `pids` and each
            partition's lease is held by its rendezvous owner among them."""
            members = _live_members(redis)
            if {_pid_of(m) for m in members} != pids or len(members) != len(pids):
                return None
            holders = _holders(redis, parts)
            if any(holders[p.index] != _pid_of(owner(p.index, members)) for p in parts):
                return None
            return holders

        before = wait_for(lambda: stable(set(listers)), what="3 lister processes holding their rendezvous shares")
        wait_caught_up(redis)  # every partition's view exists (view_seq is None without one) and is caught up
        generations = _generations(redis, parts)
        assert all(generations.values())

        victim = max(listers, key=lambda pid: sum(holder == pid for holder in before.values()))
        survivors = set(listers) - {victim}
        assert any(holder == victim for holder in before.values())
        burst = submit(redis, 20)
        os.killpg(victim, signal.SIGKILL)  # during a burst of submissions: some of its partitions have work
        listers[victim].wait(10)
        for _ in range(9):
            burst += submit(redis, 20)

        # The bound the issue asks for: a dead worker's partitions are taken over within 2 lease TTLs
        # (its leases expire after one TTL; the survivors drop it from the live members once its last
        # beat is a TTL old, and beat every TTL/3). Not asserted: this test holds on a loaded machine,
        # so it waits with a deadline for the outcome instead.
        after = wait_for(lambda: stable(survivors), what="the two survivors holding every partition")
        assert set(after.values()) <= survivors and None not in after.values()
        for index, holder in before.items():
            if holder != victim:
                assert after[index] == holder, f"partition {index} moved between survivors"
        # the dead worker is not a live member any more, and is forgotten after two TTLs
        assert not any(_pid_of(m) == victim for m in _live_members(redis))
        wait_for(lambda: not any(_pid_of(m.decode()) == victim for m in redis.zrange(keys.lister_members(), 0, -1)),
                 what="the dead worker to leave the membership set")

        wait_inactive(redis, burst)
        wait_caught_up(redis)
        assert _generations(redis, parts) == generations, "the survivors resumed the views from their cursors"
        for part in parts:
            assert current_view(redis, part) == naive_view(redis, part), f"partition {part.index}"
    finally:
        redis.close()


# -- 2. a worker joins
def test_adding_a_worker_moves_only_the_partitions_it_wins_to_it(redis, start_manager, start_lister):
    layout = create_layout(redis, 16)
    start_manager()
    workers = [start_lister(wait=False), start_lister(wait=False)]

    def stable() -> dict[int, str] | None:
        """Partition -> the name of the worker holding it, once each worker holds exactly its
        rendezvous share among `workers` (and its lease)."""
        names = sorted(worker.name for worker in workers)
        held: dict[int, str] = {}
        for worker in workers:
            share = {p.index for p in layout.partitions if owner(p.index, names) == worker.name}
            views = dict(worker.views)
            if set(views) != share:
                return None
            for index, view in views.items():
                if redis.get(layout.partitions[index].lister_lease()) != view.lease.token.encode():
                    return None
                held[index] = worker.name
        return held if len(held) == layout.size else None

    before = wait_for(stable, what="two workers holding their rendezvous shares")
    newcomer = start_lister(wait=False)
    workers.append(newcomer)
    after = wait_for(stable, what="three workers holding their rendezvous shares")

    moved = {index for index in after if after[index] != before[index]}
    assert all(after[index] == newcomer.name for index in moved), "a partition moved between the old workers"
    names = sorted(worker.name for worker in workers)
    assert moved == {p.index for p in layout.partitions if owner(p.index, names) == newcomer.name}
    assert set(newcomer.views) == moved


# -- 3. a worker fenced off a partition
def test_a_worker_whose_partition_lease_was_taken_drops_it_and_does_not_advance_its_view(
    redis, start_manager, start_lister
):
    layout = create_layout(redis, 4)
    start_manager()
    worker = start_lister()
    wait_inactive(redis, submit(redis, 40))
    wait_caught_up(redis)
    assert set(worker.views) == {0, 1, 2, 3}

    target, others = layout.partitions[1], [p for p in layout.partitions if p.index != 1]
    redis.set(target.lister_lease(), "someone-else", px=60000)
    fenced_at = view_seq(redis, target)  # from here on apply_batch.lua refuses the worker's batches
    more = submit(redis, 40)
    wait_for(lambda: target.index not in worker.views, what="the worker to drop the fenced partition")
    wait_inactive(redis, more)
    assert journal_head(redis, target)[1] > fenced_at, "the fenced partition got new journal entries"

    def others_caught_up() -> bool:
        return all(view_seq(redis, part) == journal_head(redis, part)[1] for part in others)

    wait_for(others_caught_up, what="the other partitions to apply the new entries")
    wait_for(lambda: set(worker.views) == {p.index for p in others}, what="the worker to keep its other partitions")
    assert redis.get(target.lister_lease()) == b"someone-else", "the worker released another's lease"
    assert view_seq(redis, target) == fenced_at, "the fenced worker advanced the view"

    redis.delete(target.lister_lease())  # the other holder let go: the worker takes it back
    wait_for(lambda: set(worker.views) == {0, 1, 2, 3}, what="the worker to take the partition back")
    wait_caught_up(redis)
    for part in layout.partitions:
        assert current_view(redis, part) == naive_view(redis, part), f"partition {part.index}"


# -- 4. a gap in one partition's journal
def test_a_journal_gap_in_one_partition_rebuilds_that_partition_only(redis, start_manager, start_lister):
    layout = create_layout(redis, 4)
    start_manager()
    first = start_lister()
    wait_inactive(redis, submit(redis, 40))
    wait_caught_up(redis)
    first.stop.set()
    wait_for(lambda: first.name not in {m.decode() for m in redis.zrange(keys.lister_members(), 0, -1)},
             what="the worker to stop")  # leaving the membership set is the last thing it does
    assert not first.views

    generations = _generations(redis, layout.partitions)
    target = layout.partitions[2]
    cursor = redis.hget(target.view_meta(int(generations[target.index])), "cursor").decode()
    wait_inactive(redis, submit(redis, 40))
    unapplied = redis.xrange(target.journal(), f"({cursor}", "+")
    assert len(unapplied) >= 2, "the target partition got new entries"
    keep_from = unapplied[len(unapplied) // 2][0]
    redis.xtrim(target.journal(), minid=keep_from, approximate=False)
    assert redis.xrange(target.journal(), f"({cursor}", "+", count=1)[0][0] == keep_from

    start_lister(wait=False)
    wait_for(lambda: redis.get(target.view_current()) != generations[target.index],
             what="the gapped partition to get a new generation")
    wait_caught_up(redis)
    after = _generations(redis, layout.partitions)
    assert after[target.index] != generations[target.index]
    assert {i: g for i, g in after.items() if i != target.index} == {
        i: g for i, g in generations.items() if i != target.index
    }, "the other partitions resumed their generations"
    for part in layout.partitions:
        assert current_view(redis, part) == naive_view(redis, part), f"partition {part.index}"
