"""The three orders (with ties and urgency changes), every filter, and the constraint language."""

import time

import pytest

from jobjournal.common.keys import LEGACY
from jobjournal.lister import query as q
from jobjournal.lister.errors import QueryError
from jobjournal.lister.model import JobView
from jobjournal.lister.view import BulkWriter
from jobjournal.manager import client
from tests.helpers import names, submit, wait_caught_up, wait_for, wait_inactive


def _ids(redis, seen=None, **fields):
    return [row["id"] for row in q.list_jobs(redis, q.ListQuery(attrs=["id"], **fields), timeout=5, seen=seen)]


@pytest.fixture
def synthetic(redis):
    """A view written directly: jobs with chosen priorities and times, to pin down ties."""
    views = [
        JobView(id=10, userid=1, state="SCHED", priority=16, t_submit=1.0),
        JobView(id=11, userid=2, state="SCHED", priority=20, t_submit=1.0),
        JobView(id=12, userid=1, state="SCHED", priority=16, t_submit=1.0),
        JobView(id=13, userid=1, state="RUN", priority=16, t_run=5.0, ranks="0-1", nodelist="node[0-1]"),
        JobView(id=14, userid=2, state="CLEANUP", priority=16, t_run=6.0, ranks="2", nodelist="node2"),
        JobView(id=15, userid=1, state="INACTIVE", result="COMPLETED", t_inactive=9.0, name="a", queue="q1",
                ranks="3", nodelist="node3"),
        JobView(id=16, userid=1, state="INACTIVE", result="FAILED", t_inactive=9.0, name="b", queue="q2",
                ranks="10", nodelist="node10"),
        JobView(id=17, userid=2, state="INACTIVE", result="CANCELED", t_inactive=8.0, name="a", queue="q1"),
        JobView(id=18, userid=2, state="INACTIVE", result="TIMEOUT", t_inactive=10.0, name="c", queue="q2"),
    ]
    with BulkWriter(redis, LEGACY, 1) as writer:
        for view in views:
            writer.add(view)
        writer.finish("0-0", 0)
    redis.set(LEGACY.view_current(), 1)
    return redis


def test_pending_then_running_then_inactive_each_in_its_order_with_ties_by_id(synthetic):
    # pending: priority high first, equal priority old id first; running: t_run newest first;
    # inactive: t_inactive newest first, equal times newest id first
    assert _ids(synthetic) == [11, 10, 12, 14, 13, 18, 16, 15, 17]


def test_filters_by_user_state_result_name_queue_and_since(synthetic):
    redis = synthetic
    assert _ids(redis, userid=1) == [10, 12, 13, 16, 15]
    assert _ids(redis, states=["pending"]) == [11, 10, 12]
    assert _ids(redis, states=["RUN"]) == [13]
    assert _ids(redis, states=["running", "inactive"], userid=2) == [14, 18, 17]
    assert _ids(redis, results=["failed"]) == [16]
    assert _ids(redis, results=["failed", "timeout"]) == [18, 16]
    assert _ids(redis, states=["sched"], results=["canceled"]) == [11, 10, 12, 17], "states OR results"
    assert _ids(redis, name="a") == [15, 17]
    assert _ids(redis, queue="q2") == [18, 16]
    assert _ids(redis, since=9.0) == [11, 10, 12, 14, 13, 18], "active jobs, and inactive ones strictly after"
    assert _ids(redis, since=8.5, userid=1) == [10, 12, 13, 16, 15]
    assert _ids(redis, since=8.5, states=["inactive"]) == [18, 16, 15]
    assert _ids(redis, max_entries=4) == [11, 10, 12, 14]


@pytest.mark.parametrize(
    ("constraint", "expected"),
    [
        ({"userid": [2]}, [11, 14, 18, 17]),
        ({"and": [{"userid": [1]}, {"states": ["inactive"]}]}, [16, 15]),
        ({"or": [{"name": ["c"]}, {"results": ["completed"]}]}, [18, 15]),
        ({"not": [{"states": ["active"]}]}, [18, 16, 15, 17]),
        ({"t_inactive": [">=9"]}, [18, 16, 15]),
        ({"t_inactive": ["<9", ">9.5"]}, [18, 17]),
        ({"and": [{"t_run": [">5"]}, {"queue": ["default"]}]}, [14]),
        ({"and": []}, [11, 10, 12, 14, 13, 18, 16, 15, 17]),
        ({}, [11, 10, 12, 14, 13, 18, 16, 15, 17]),
        ({"or": []}, [11, 10, 12, 14, 13, 18, 16, 15, 17]),
        ({"not": []}, []),
        ({"not": [{"userid": [1]}, {"states": ["inactive"]}]}, [11, 10, 12, 14, 13, 18, 17]),
        ({"not": [{"userid": [1]}, {"userid": [2]}]}, [11, 10, 12, 14, 13, 18, 16, 15, 17]),
        ({"hostlist": ["node[1-2]"]}, [14, 13]),
        ({"hostlist": ["node3,node[10-11]"]}, [16, 15]),
        ({"hostlist": ["node[01-03]"]}, []),
        ({"hostlist": ["login1"]}, []),
        ({"ranks": ["0"]}, [13]),
        ({"ranks": ["2-3", 10]}, [14, 16, 15]),
        ({"ranks": ["0-4294967295"]}, [14, 13, 16, 15]),
        ({"and": [{"hostlist": ["node[0-99]"]}, {"not": [{"states": ["active"]}]}]}, [16, 15]),
    ],
)
def test_the_constraint_language_selects_jobs(synthetic, constraint, expected):
    assert _ids(synthetic, constraint=constraint) == expected


def _nested(depth: int) -> dict:
    node: dict = {"userid": [1]}
    for _ in range(depth):
        node = {"and": [node]}
    return node


@pytest.mark.parametrize(
    ("constraint", "message"),
    [
        ({"launch": [1]}, "unknown constraint operator 'launch'"),
        ({"userid": ["root"]}, "'userid' values must be integers"),
        ({"states": ["sleeping"]}, "unknown state 'sleeping'"),
        ({"results": ["great"]}, "unknown result 'great'"),
        ({"t_submit": ["soon"]}, "'soon' is not a comparison"),
        ({"t_submit": [">=nan"]}, "is not a comparison"),
        ({"hostlist": ["node[3-1]"]}, "runs backwards"),
        ({"hostlist": ["node[1-2"]}, "unbalanced brackets"),
        ({"hostlist": ["a[1]b[2]"]}, "bad entry"),
        ({"hostlist": [7]}, "is not a hostlist"),
        ({"ranks": ["two"]}, "'two' is not an idset"),
        ({"ranks": [1.5]}, "1.5 is not an idset"),
        ({"x" * 5000: []}, "unknown constraint operator 'xxxx"),
        ({"userid": 1}, "takes a list of values"),
        ({"a": [], "b": []}, "one operator"),
        ([1, 2], "one operator"),
        (_nested(20), "too large"),
    ],
)
def test_a_bad_constraint_gets_an_error_naming_the_problem(synthetic, constraint, message):
    with pytest.raises(QueryError, match=message.replace("(", r"\(").replace("[", r"\[")) as caught:
        q.list_jobs(synthetic, q.ListQuery(constraint=constraint), timeout=1)
    assert len(str(caught.value)) < 200 and "\n" not in str(caught.value), "bounded, one line"


def test_an_unknown_attribute_is_an_error_naming_it(synthetic):
    with pytest.raises(QueryError, match="unknown attribute 'colour'"):
        q.list_jobs(synthetic, q.ListQuery(attrs=["state", "colour"]))
    assert set(q.list_jobs(synthetic, q.ListQuery(attrs=["all"]))[0]) == set(q.list_attrs())


def test_a_query_past_its_work_bound_fails_clearly(synthetic):
    with pytest.raises(QueryError, match="examined more than 3 jobs"):
        q.list_jobs(synthetic, q.ListQuery(name="zzz", max_work=3))
    assert q.list_jobs(synthetic, q.ListQuery(max_entries=2, max_work=3))


def test_live_orders_follow_urgency_changes(redis, start_manager, start_lister):
    start_manager(nodes=1, cores_per_node=1)
    start_lister()
    [blocker] = submit(redis, sim={"runtime": 30})
    wait_for(lambda: "start" in names(redis, blocker))
    first, second, third = submit(redis, 3)
    wait_for(lambda: "priority" in names(redis, third))
    wait_caught_up(redis)
    assert _ids(redis, states=["pending"]) == [first, second, third]
    client.set_urgency(redis, third, 25, userid=1000)
    client.set_urgency(redis, first, 5, userid=1000)
    wait_caught_up(redis)
    assert _ids(redis, states=["pending"]) == [third, second, first]
    client.cancel(redis, [blocker], userid=1000)
    wait_inactive(redis, [first, second, third])
    wait_caught_up(redis)
    assert _ids(redis, states=["inactive"]) == [first, second, third, blocker]
    assert _ids(redis, states=["running"]) == []


def test_running_jobs_are_newest_first(redis, start_manager, start_lister):
    start_manager()
    start_lister()
    ids = []
    for _ in range(3):
        [job_id] = submit(redis, sim={"runtime": 30})
        ids.append(job_id)
        wait_for(lambda job_id=job_id: "start" in names(redis, job_id))
        time.sleep(0.01)
    wait_caught_up(redis)
    assert _ids(redis, states=["running"]) == ids[::-1]


def test_a_caller_that_keeps_the_generations_saves_a_round_trip_and_still_sees_a_switch(synthetic, monkeypatch):
    from jobjournal.lister.view import delete_generation

    redis, seen = synthetic, {}
    assert _ids(redis, seen=seen) == [11, 10, 12, 14, 13, 18, 16, 15, 17] and seen == {LEGACY: 1}
    trips = []
    real = q.reads
    monkeypatch.setattr(q, "reads", lambda client, commands: trips.append(len(commands)) or real(client, commands))
    _ids(redis, seen=seen)
    with_seen = len(trips)
    trips.clear()
    _ids(redis)
    assert with_seen == len(trips) - 1, "the generations were not read again"
    with BulkWriter(redis, LEGACY, 2) as writer:  # a rebuild switches to generation 2 and drops 1
        writer.add(JobView(id=99, userid=1, state="SCHED", priority=16, t_submit=1.0))
        writer.finish("0-0", 0)
    redis.set(LEGACY.view_current(), 2)
    delete_generation(redis, LEGACY, 1)
    assert _ids(redis, seen=seen) == [99] and seen == {LEGACY: 2}
