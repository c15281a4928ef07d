"""Saying what is true when a part is down: `jobs` and `job` fail at once when no view can come,
and warn when an answer may be out of date (no lister applies the view, or it lags the journal)."""

import os
import subprocess
import sys
import time

from jobjournal.common.keys import LEGACY
from jobjournal.common.layout import LEGACY as LEGACY_LAYOUT
from jobjournal.common.layout import create_layout
from jobjournal.lister.freshness import LAG_WARNING_S, freshness
from jobjournal.lister.naive import build_naive
from tests.conftest import ROOT
from tests.helpers import submit, wait_inactive


def _jobjournal(redis_url, tmp_path, *args) -> subprocess.CompletedProcess:
    env = {**os.environ, "JOBJOURNAL_REDIS_URL": redis_url, "JOBJOURNAL_HOME": str(tmp_path)}
    return subprocess.run([sys.executable, "-m", "jobjournal", *args], env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=120)


def _view_of_now(redis, part=LEGACY) -> None:
    """A complete view of the journal as it is now, and no lister (as after the lister died)."""
    build_naive(redis, part, 1)
    redis.set(part.view_current(), 1)


def test_with_no_view_and_no_lister_jobs_and_job_say_so_at_once(redis, redis_url, tmp_path):
    for args in (["jobs", "--timeout", "3600"], ["job", "--timeout", "3600", "1"], ["jobs", "--stats"]):
        result = _jobjournal(redis_url, tmp_path, *args)  # waiting for a view would outlive the subprocess timeout
        assert result.returncode == 1, args
        assert result.stderr.strip() == "Error: no job view and no lister to build it: start `jobjournal lister`"


def test_with_a_view_and_no_lister_the_answer_comes_with_a_warning(redis, redis_url, start_manager, tmp_path):
    start_manager()
    job_ids = submit(redis, 3)
    wait_inactive(redis, job_ids)
    _view_of_now(redis)
    result = _jobjournal(redis_url, tmp_path, "jobs", "-A", "-a", "-n", "-o", "{id.dec}")
    assert result.returncode == 0
    assert sorted(int(line) for line in result.stdout.split()) == sorted(job_ids)
    assert result.stderr.strip() == "warning: no lister is applying the view: this answer may be out of date"


def test_a_view_behind_its_journal_is_measured_and_named_in_the_warning(redis, start_manager):
    start_manager()
    wait_inactive(redis, submit(redis, 2))
    _view_of_now(redis)
    assert freshness(redis, LEGACY_LAYOUT, time.time(), 1.0).behind_events == 0
    later = submit(redis, 3)
    wait_inactive(redis, later)
    posted = time.time()
    health = freshness(redis, LEGACY_LAYOUT, posted + LAG_WARNING_S + 30, 1.0)  # a clock of the test's
    assert health.behind_events == 3 * 10 and health.behind_s >= LAG_WARNING_S + 29
    assert f"the view is at least {health.behind_s:.0f}s (30 events) behind the journal" in health.warnings()
    assert freshness(redis, LEGACY_LAYOUT, posted, 1.0).warnings() == [
        "no lister is applying the view: this answer may be out of date"]


def test_partitions_are_named_when_only_some_lack_a_lister(redis):
    layout = create_layout(redis, 4)
    for part in layout.partitions:
        _view_of_now(redis, part)
    for part in layout.partitions[:2]:
        redis.set(part.lister_lease(), "someone", px=60_000)
    health = freshness(redis, layout, time.time(), 1.0)
    assert health.fatal() is None
    assert health.warnings() == ["no lister is applying partitions 2-3 of the view: this answer may be out of date"]
    redis.delete(layout.partitions[3].view_current())
    assert freshness(redis, layout, time.time(), 1.0).fatal() == (
        "no job view of partition 3 and no lister to build it: start `jobjournal lister`")


def test_a_lister_that_died_before_building_is_not_waited_for(redis):
    from jobjournal.common import keys

    now = time.time()
    redis.zadd(keys.lister_members(), {"host:1:dead": now - 10, "host:2:starting": now})
    assert freshness(redis, LEGACY_LAYOUT, now, 1.0).fatal() is None, "one beat just now: it will build"
    redis.zrem(keys.lister_members(), "host:2:starting")
    assert freshness(redis, LEGACY_LAYOUT, now, 1.0).fatal() is not None, "a member silent for 10 TTLs is gone"
