"""Paged listings: the pages, one after another, are the whole listing, in its order, with ties in
every list and over partitions; and a bad cursor is a clear error."""

import random

import pytest

from jobjournal.common.keys import LEGACY
from jobjournal.common.layout import create_layout
from jobjournal.lister import query as q
from jobjournal.lister.errors import QueryError
from jobjournal.lister.model import JobView
from jobjournal.lister.view import BulkWriter


def _views(count: int) -> list[JobView]:
    """Jobs with few distinct scores (ties everywhere): priorities of 3 kinds, run and end times of 4."""
    rng = random.Random(3)
    views = []
    for job_id in range(1000, 1000 + count):
        kind = rng.choice(["pending", "running", "inactive", "inactive"])
        userid = rng.choice([1, 2])
        if kind == "pending":
            priority = rng.choice([0, 16, 20])
            views.append(JobView(id=job_id, userid=userid, state="SCHED", priority=priority, t_submit=1.0))
        elif kind == "running":
            views.append(JobView(id=job_id, userid=userid, state="RUN", priority=16, t_run=rng.choice([5.0, 6.0])))
        else:
            result = rng.choice(["COMPLETED", "FAILED"])
            views.append(JobView(id=job_id, userid=userid, state="INACTIVE", result=result,
                                 t_inactive=rng.choice([7.0, 8.0, 9.0, 10.0])))
    return views


def _store(redis, partitions: int, views: list[JobView]) -> None:
    layout = create_layout(redis, partitions) if partitions > 1 else None
    parts = layout.partitions if layout else [LEGACY]
    for part in parts:
        with BulkWriter(redis, part, 1) as writer:
            for view in views:
                if (layout.partition_of(view.id) if layout else LEGACY) == part:
                    writer.add(view)
            writer.finish("0-0", 0)
        redis.set(part.view_current(), 1)


def _paged(redis, size: int, **fields) -> list[int]:
    ids, after = [], None
    while True:
        rows, after = q.list_page(redis, q.ListQuery(attrs=["id"], max_entries=size, after=after, **fields), timeout=5)
        ids += [row["id"] for row in rows]
        if after is None:
            return ids


@pytest.mark.parametrize("partitions", [1, 3])
@pytest.mark.parametrize("size", [1, 7, 50, 1000])
def test_the_pages_one_after_another_are_the_whole_listing(redis, partitions, size):
    _store(redis, partitions, _views(120))
    whole = [row["id"] for row in q.list_jobs(redis, q.ListQuery(attrs=["id"]), timeout=5)]
    assert len(whole) == 120
    assert _paged(redis, size) == whole
    mine = [row["id"] for row in q.list_jobs(redis, q.ListQuery(attrs=["id"], userid=2), timeout=5)]
    assert _paged(redis, size, userid=2) == mine
    since = [row["id"] for row in q.list_jobs(redis, q.ListQuery(attrs=["id"], since=8.0), timeout=5)]
    assert _paged(redis, size, since=8.0) == since


def test_a_cursor_naming_no_list_is_a_clear_error(redis):
    _store(redis, 1, _views(5))
    with pytest.raises(QueryError, match="names no list 'nowhere'"):
        q.list_page(redis, q.ListQuery(max_entries=2, after=("nowhere", 1.0, 5)), timeout=5)
