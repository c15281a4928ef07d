"""The first-fit resource pool, the pending queue, and R (RFC 20) with RFC 22 idsets."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jobjournal.common.jobspec import make_jobspec
from jobjournal.common.resources import decode_idset, encode_idset, make_R
from jobjournal.manager.scheduler import PendingQueue, Pool


def spec(**fields):
    return make_jobspec(command=["/bin/true"], **fields)


def used(pool: Pool) -> list[int]:
    """Cores in use on each node."""
    return [pool.cores_per_node - len(free) for free in pool.free]


# -- Pool: allocation ---------------------------------------------------------------------


def test_tasks_fill_node_0_first():
    pool = Pool(4, 8)
    assert pool.allocate(spec(ntasks=3)) == {0: [0, 1, 2]}
    assert used(pool) == [3, 0, 0, 0]


def test_tasks_that_overflow_a_node_continue_on_the_next():
    pool = Pool(4, 8)
    assert pool.allocate(spec(ntasks=10)) == {0: list(range(8)), 1: [0, 1]}


def test_successive_jobs_take_the_next_free_cores():
    pool = Pool(2, 4)
    assert pool.allocate(spec(ntasks=3)) == {0: [0, 1, 2]}
    assert pool.allocate(spec(ntasks=2)) == {0: [3], 1: [0]}


def test_a_task_with_several_cores_stays_on_one_node():
    pool = Pool(4, 8)
    allocation = pool.allocate(spec(ntasks=3, cores_per_task=3))
    assert allocation == {0: [0, 1, 2, 3, 4, 5], 1: [0, 1, 2]}
    assert all(len(cores) % 3 == 0 for cores in allocation.values())
    assert used(pool) == [6, 3, 0, 0]


def test_a_multi_core_task_skips_a_node_without_room_for_it():
    pool = Pool(2, 4)
    pool.allocate(spec(ntasks=3))
    assert pool.allocate(spec(ntasks=1, cores_per_task=2)) == {1: [0, 1]}


@pytest.mark.parametrize(
    ("ntasks", "nodes", "cores_per_task", "expected"),
    [
        (2, 2, 1, {0: 1, 1: 1}),
        (4, 2, 1, {0: 2, 1: 2}),
        (5, 2, 1, {0: 3, 1: 2}),
        (4, 4, 2, {0: 2, 1: 2, 2: 2, 3: 2}),
        (5, 3, 2, {0: 4, 1: 4, 2: 2}),
    ],
)
def test_nodes_n_spreads_tasks_across_exactly_n_nodes(ntasks, nodes, cores_per_task, expected):
    pool = Pool(4, 8)
    allocation = pool.allocate(spec(ntasks=ntasks, nodes=nodes, cores_per_task=cores_per_task))
    assert {rank: len(cores) for rank, cores in allocation.items()} == expected
    assert len(allocation) == nodes


def test_nodes_n_uses_other_nodes_when_the_first_are_busy():
    pool = Pool(4, 4)
    pool.allocate(spec(ntasks=6))  # node 0 full, node 1 half used
    allocation = pool.allocate(spec(ntasks=6, nodes=2))
    assert sorted(allocation) == [2, 3]
    assert [len(cores) for cores in allocation.values()] == [3, 3]


def test_a_job_that_does_not_fit_now_takes_nothing():
    pool = Pool(2, 4)
    pool.allocate(spec(ntasks=6))
    before = [list(free) for free in pool.free]
    assert pool.allocate(spec(ntasks=3)) is None
    assert pool.allocate(spec(ntasks=2, nodes=2)) is None
    assert pool.free == before


def test_release_returns_the_cores():
    pool = Pool(2, 4)
    first = pool.allocate(spec(ntasks=3))
    second = pool.allocate(spec(ntasks=3))
    assert (first, second) == ({0: [0, 1, 2]}, {0: [3], 1: [0, 1]})
    pool.release(first)
    assert pool.free == [[0, 1, 2], [2, 3]]
    pool.release(second)
    assert pool.free == [[0, 1, 2, 3], [0, 1, 2, 3]]


def test_released_cores_are_reused_first_fit():
    pool = Pool(2, 4)
    first = pool.allocate(spec(ntasks=2))
    pool.allocate(spec(ntasks=2))
    pool.release(first)
    assert pool.allocate(spec(ntasks=2)) == {0: [0, 1]}


def test_claim_marks_an_earlier_allocation_as_used():
    pool = Pool(2, 4)
    pool.claim({0: [1, 2], 1: [0]})
    assert pool.free == [[0, 3], [1, 2, 3]]
    assert pool.allocate(spec(ntasks=3)) == {0: [0, 3], 1: [1]}


def test_a_claimed_allocation_can_be_released():
    pool = Pool(2, 4)
    pool.claim({1: [2, 3]})
    pool.release({1: [2, 3]})
    assert pool.free == [[0, 1, 2, 3], [0, 1, 2, 3]]


# -- Pool: satisfiable --------------------------------------------------------------------


@pytest.mark.parametrize(
    "fields", [{"ntasks": 32}, {"ntasks": 4, "nodes": 4}, {"ntasks": 8, "cores_per_task": 4},
               {"cores_per_task": 8}, {"ntasks": 16, "nodes": 2}],
)
def test_a_job_the_pool_can_hold_is_satisfiable(fields):
    assert Pool(4, 8).satisfiable(spec(**fields)) is None


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"ntasks": 5, "nodes": 5}, "5 nodes requested, the pool has 4"),
        ({"ntasks": 33}, "33 tasks of 1 cores do not fit on 4 nodes of 8 cores"),
        ({"ntasks": 9, "cores_per_task": 4}, "9 tasks of 4 cores do not fit on 4 nodes of 8 cores"),
        ({"cores_per_task": 9}, "9 cores per task, nodes have 8"),
        ({"ntasks": 17, "nodes": 2}, "17 tasks do not fit on 2 nodes"),
        ({"ntasks": 3, "nodes": 1, "cores_per_task": 3}, "3 tasks do not fit on 1 nodes"),
    ],
)
def test_an_unsatisfiable_job_gets_a_reason(fields, reason):
    assert Pool(4, 8).satisfiable(spec(**fields)) == reason


@pytest.mark.parametrize(
    "fields", [{"ntasks": 5, "cores_per_task": 6}, {"ntasks": 9, "cores_per_task": 3}],
)
def test_an_unsatisfiable_reason_never_claims_the_pool_has_enough_cores(fields):
    reason = Pool(4, 8).satisfiable(spec(**fields))
    assert reason is not None
    counts = re.fullmatch(r"(\d+) cores requested, the pool has (\d+)", reason)
    assert counts is None or int(counts[1]) > int(counts[2]), reason


def test_satisfiable_ignores_what_is_in_use_now():
    pool = Pool(2, 4)
    pool.allocate(spec(ntasks=8))
    assert pool.satisfiable(spec(ntasks=8)) is None
    assert pool.allocate(spec(ntasks=1)) is None


@pytest.mark.parametrize(
    ("ntasks", "cores_per_task", "nodes"),
    [
        (ntasks, cores_per_task, nodes)
        for ntasks in (1, 3, 4, 7, 9, 13)
        for cores_per_task in (1, 2, 3, 5)
        for nodes in (None, 1, 2, 3)
        if not nodes or nodes <= ntasks
    ],
)
def test_on_an_empty_pool_satisfiable_agrees_with_allocate(ntasks, cores_per_task, nodes):
    job = spec(ntasks=ntasks, cores_per_task=cores_per_task, nodes=nodes)
    pool = Pool(3, 5)
    assert (pool.satisfiable(job) is None) == (pool.allocate(job) is not None)


# -- PendingQueue -------------------------------------------------------------------------


def test_the_queue_orders_by_priority_high_first_then_by_id_old_first():
    queue = PendingQueue()
    for job_id, priority in [(30, 16), (10, 16), (20, 31), (40, 0), (5, 16)]:
        queue.add(job_id, priority)
    assert list(queue.in_order()) == [(20, 31), (5, 16), (10, 16), (30, 16), (40, 0)]
    assert len(queue) == 5


def test_re_adding_a_job_with_a_new_priority_moves_it():
    queue = PendingQueue()
    for job_id in (1, 2, 3):
        queue.add(job_id, 16)
    queue.add(3, 4294967295)
    queue.add(1, 0)
    assert list(queue.in_order()) == [(3, 4294967295), (2, 16), (1, 0)]
    assert len(queue) == 3


def test_remove_takes_a_job_out_and_ignores_unknown_ids():
    queue = PendingQueue()
    for job_id in (1, 2, 3):
        queue.add(job_id, 16)
    queue.remove(2)
    queue.remove(99)
    assert [job_id for job_id, _ in queue.in_order()] == [1, 3]
    assert 2 not in queue and 1 in queue


def test_pop_first_removes_the_first_jobs_only():
    queue = PendingQueue()
    for job_id, priority in [(1, 1), (2, 2), (3, 3), (4, 4)]:
        queue.add(job_id, priority)
    queue.pop_first(2)
    assert list(queue.in_order()) == [(2, 2), (1, 1)]
    assert 4 not in queue and 3 not in queue and len(queue) == 2


def test_a_popped_job_can_be_added_again():
    queue = PendingQueue()
    queue.add(1, 5)
    queue.pop_first(1)
    queue.add(1, 6)
    assert list(queue.in_order()) == [(1, 6)]


def test_pop_first_beyond_the_length_empties_the_queue():
    queue = PendingQueue()
    queue.add(1, 5)
    queue.pop_first(10)
    assert len(queue) == 0 and list(queue.in_order()) == []


# -- resources: idsets and R --------------------------------------------------------------


@pytest.mark.parametrize(
    ("ids", "text"),
    [([], ""), ([3], "3"), ([0, 1, 2, 3], "0-3"), ([0, 1, 2, 3, 5, 7, 8], "0-3,5,7-8"),
     ([8, 7, 5, 3, 2, 1, 0, 5], "0-3,5,7-8"), ([1, 3], "1,3")],
)
def test_encode_idset_compresses_runs(ids, text):
    assert encode_idset(ids) == text


@pytest.mark.parametrize("text", ["", "4", "0-3", "0-3,5,7-8", "10-12,100"])
def test_decode_idset_inverts_encode_idset(text):
    assert encode_idset(decode_idset(text)) == text


def test_decode_idset_expands_ranges():
    assert decode_idset("0-2,5,7-8") == [0, 1, 2, 5, 7, 8]


def test_make_r_groups_ranks_with_the_same_cores():
    r = make_R({0: [0, 1, 2], 1: [0, 1, 2], 3: [4, 5]}, 100.0, 60.0)
    assert [(e.rank, e.children) for e in r.execution.R_lite] == [
        ("0-1", {"core": "0-2"}), ("3", {"core": "4-5"}),
    ]
    assert r.ranks == [0, 1, 3]
    assert r.ncores == 8


@pytest.mark.parametrize(
    ("allocation", "nodelist"),
    [
        ({0: [0]}, ["node0"]),
        ({0: [0], 1: [0]}, ["node[0-1]"]),
        ({1: [0], 3: [1], 2: [2]}, ["node[1-3]"]),
        ({0: [0], 2: [0], 5: [0]}, ["node[0,2,5]"]),
    ],
)
def test_make_r_nodelist_is_a_hostlist(allocation, nodelist):
    assert make_R(allocation, 0.0, 0.0).execution.nodelist == nodelist


def test_make_r_expiration_is_start_plus_duration():
    execution = make_R({0: [0]}, 1000.5, 60.0).execution
    assert (execution.starttime, execution.expiration) == (1000.5, 1060.5)


def test_make_r_without_a_duration_never_expires():
    assert make_R({0: [0]}, 1000.5, 0.0).execution.expiration == 0.0


def test_r_ncores_counts_cores_on_every_rank():
    pool = Pool(4, 8)
    job = spec(ntasks=5, nodes=3, cores_per_task=2)
    r = make_R(pool.allocate(job), 0.0, 0.0)
    assert r.ncores == job.ncores == 10
    assert r.ranks == [0, 1, 2]


def test_the_first_job_skips_removed_and_re_prioritized_entries():
    queue = PendingQueue()
    for job_id in (1, 2, 3):
        queue.add(job_id, 16)
    queue.remove(1)
    queue.add(2, 1)
    assert queue.first() == (3, 16)
    queue.pop_first()
    assert queue.first() == (2, 1) and len(queue) == 1


def test_many_re_prioritizations_keep_the_heap_small():
    queue = PendingQueue()
    for round_ in range(2000):
        queue.add(7, round_ % 31)
    assert len(queue) == 1 and len(queue._heap) <= 1002
    assert queue.first() == (7, 1999 % 31)


def test_first_fit_skips_full_nodes_and_comes_back_to_released_ones():
    pool = Pool(nodes=3, cores_per_node=2)
    spec = make_jobspec(command=["x"], ntasks=2)
    first, second = pool.allocate(spec), pool.allocate(spec)
    assert (first, second) == ({0: [0, 1]}, {1: [0, 1]})
    assert pool.free_cores == 2
    pool.release(first)
    assert pool.allocate(spec) == {0: [0, 1]}, "first fit again from the lowest rank"
    assert pool.allocate(make_jobspec(command=["x"], ntasks=3)) is None
    assert pool.free_cores == 2


def test_free_cores_follow_claims_after_a_restart():
    pool = Pool(nodes=2, cores_per_node=4)
    pool.claim({0: [0, 1, 2, 3], 1: [0]})
    assert pool.free_cores == 3
    assert pool.allocate(make_jobspec(command=["x"], ntasks=3)) == {1: [1, 2, 3]}


def _first_fit_by_scanning(free: list[list[int]], ntasks: int, cores_per_task: int) -> dict[int, list[int]] | None:
    """The oracle: first fit as its definition says, every rank from 0, no index kept."""
    counts, left = {}, ntasks
    for rank, cores in enumerate(free):
        fit = min(len(cores) // cores_per_task, left)
        if fit:
            counts[rank], left = fit * cores_per_task, left - fit
        if not left:
            return {rank: free[rank][:count] for rank, count in counts.items()}
    return None


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.integers(1, 5), st.integers(1, 3)), max_size=60))
def test_allocations_and_releases_in_any_order_agree_with_a_first_fit_scan_from_rank_0(steps):
    pool = Pool(nodes=4, cores_per_node=6)
    oracle = [list(range(6)) for _ in range(4)]
    held: list[dict[int, list[int]]] = []
    for allocate, ntasks, cores_per_task in steps:
        if allocate or not held:
            expected = _first_fit_by_scanning(oracle, ntasks, cores_per_task)
            got = pool.allocate(spec(ntasks=ntasks, cores_per_task=cores_per_task))
            assert got == expected
            if got is not None:
                held.append(got)
                for rank, cores in got.items():
                    oracle[rank] = [core for core in oracle[rank] if core not in cores]
        else:
            released = held.pop(ntasks % len(held))
            pool.release(released)
            for rank, cores in released.items():
                oracle[rank] = sorted(oracle[rank] + cores)
        assert pool.free == oracle and pool.free_cores == sum(map(len, oracle))


def test_a_rank_emptied_and_refilled_many_times_keeps_the_first_fit_index_bounded():
    pool = Pool(nodes=3, cores_per_node=1)
    one = spec(ntasks=1)
    pool.allocate(one)  # rank 0 stays full: rank 2 is never at the index's top
    for _ in range(50):
        assert pool.allocate(one) == {1: [0]} and pool.allocate(one) == {2: [0]}
        pool.release({2: [0]})
        pool.release({1: [0]})
    assert len(pool._open) <= 2 * 3 + 1
