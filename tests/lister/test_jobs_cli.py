"""`jobjournal jobs` and `jobjournal job`, in the spirit of `flux jobs`."""

import json
import os
import re
import threading
import time

import pytest

from jobjournal import jobs_format
from jobjournal.common.ids import f58
from jobjournal.manager import client
from tests.helpers import names, submit, wait_caught_up, wait_for, wait_inactive

ME = os.getuid()


@pytest.fixture
def jobs(redis, start_manager, start_lister):
    """Mine: 2 done, 1 failed, 1 running, 1 held; someone else's: 1 running."""
    start_manager()
    start_lister()
    done = submit(redis, 2, userid=ME, name="done", queue="batch")
    failed = submit(redis, userid=ME, name="oops", sim={"runtime": 0, "exit_code": 3})
    running = submit(redis, userid=ME, name="long", sim={"runtime": 60})
    held = submit(redis, userid=ME, name="wait", urgency=0)
    other = submit(redis, userid=ME + 1, name="theirs", sim={"runtime": 60})
    wait_inactive(redis, done + failed)
    wait_for(lambda: all("priority" in names(redis, j) for j in held + running + other))
    wait_for(lambda: all("start" in names(redis, j) for j in running + other))
    wait_caught_up(redis)
    return {"done": done, "failed": failed, "running": running, "held": held, "other": other}


def _ids(output: str) -> list[str]:
    return [line.split()[0] for line in output.splitlines()[1:]]


def test_by_default_jobs_shows_my_pending_and_running_jobs_with_a_header(jobs, cli):
    result = cli("jobs")
    assert result.output.splitlines()[0].split() == ["JOBID", "USER", "NAME", "ST", "NTASKS", "NNODES", "TIME", "INFO"]
    assert _ids(result.output) == [f58(j) for j in jobs["held"] + jobs["running"]]
    assert "held" in result.output.splitlines()[1]


def test_flags_widen_and_narrow_the_listing(jobs, cli):
    mine_all = [f58(j) for j in jobs["held"] + jobs["running"] + jobs["failed"] + jobs["done"][::-1]]
    assert _ids(cli("jobs", "-a").output) == mine_all
    assert set(_ids(cli("jobs", "-A").output)) == {f58(j) for j in jobs["held"] + jobs["running"] + jobs["other"]}
    assert _ids(cli("jobs", "-u", str(ME + 1)).output) == [f58(j) for j in jobs["other"]]
    assert _ids(cli("jobs", "-f", "failed|sched").output) == [f58(j) for j in jobs["held"] + jobs["failed"]]
    assert _ids(cli("jobs", "-a", "--name", "done").output) == [f58(j) for j in jobs["done"][::-1]]
    assert _ids(cli("jobs", "-a", "--queue", "batch", "-c", "1").output) == [f58(jobs["done"][1])]
    assert _ids(cli("jobs", "--since", "-1h").output) == mine_all, "--since lists active jobs and implies -a"
    assert _ids(cli("jobs", "--since", "1h", "-f", "running").output) == [f58(j) for j in jobs["running"]]
    assert _ids(cli("jobs", "--since", "-1h", "-f", "inactive").output) == [
        f58(j) for j in jobs["failed"] + jobs["done"][::-1]]
    after_all_ended = str(time.time())
    assert _ids(cli("jobs", "--since", after_all_ended).output) == [f58(j) for j in jobs["held"] + jobs["running"]]
    future = cli("jobs", "--since", str(time.time() + 60))
    assert future.exit_code == 2 and "appears to be in the future" in future.output
    no_header = cli("jobs", "-n", "-o", "{id.dec} {status} {ncores}").output.splitlines()
    assert no_header == [f"{jobs['held'][0]} SCHED 1", f"{jobs['running'][0]} RUN 1"]
    rows = [json.loads(line) for line in cli("jobs", "-a", "--json").output.splitlines()]
    assert rows[2]["result"] == "FAILED" and rows[2]["waitstatus"] == 3 << 8
    assert json.loads(cli("jobs", "-a", "--json-document").output) == {"jobs": rows}, "Flux's one-document form"


def test_stats_count_states_results_and_queues(jobs, cli):
    text = cli("jobs", "--stats").output
    assert text.startswith("1 pending, 2 running, 3 inactive (2 completed, 1 failed, 0 canceled, 0 timeout)")
    stats = json.loads(cli("jobs", "--stats", "--json").output)
    assert stats["queues"]["batch"]["successful"] == 2 and stats["queues"]["default"]["running"] == 2


def test_bad_arguments_get_clear_errors(jobs, cli):
    assert "no such user 'nobody-here'" in cli("jobs", "-u", "nobody-here").output
    assert "unknown state 'asleep'" in cli("jobs", "-f", "asleep").output
    assert "not a time, date or duration" in cli("jobs", "--since", "yesterday-ish").output
    assert "bad format" in cli("jobs", "-o", "{colour}").output
    assert "unknown constraint operator 'x'" in cli("jobs", "--constraint", '{"x": [1]}').output
    assert "not JSON" in cli("jobs", "--constraint", "{").output


def test_job_shows_one_job_and_can_wait_for_a_state(jobs, redis, cli):
    [held] = jobs["held"]
    shown = cli("job", f58(held)).output
    assert f"id                   {f58(held)} ({held})" in shown and "priority             0" in shown
    assert f"user                 {jobs_format.username(ME)} ({ME})" in shown
    assert "command              true" in shown and '"command": ["true"]' in shown, "the redacted jobspec"
    t_submit = next(line for line in shown.splitlines() if line.startswith("t_submit"))
    assert re.fullmatch(r"t_submit +\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d \(\d+[smhd] ago\)", t_submit)
    assert "environment" not in shown or '"environment": {}' in shown
    assert f"no such job: {f58(99)}" in cli("job", "99").output
    # released while `job --wait-state` waits, most likely; it sees the state it waits for either way
    release = threading.Timer(0.3, lambda: client.set_urgency(redis, held, 16, userid=ME))
    release.start()
    try:
        row = json.loads(cli("job", "--wait-state", "run", "--json", str(held)).output)
    finally:
        release.join()
    assert row["state"] in ("RUN", "CLEANUP", "INACTIVE")
    assert "did not reach" in cli("job", "--wait-state", "inactive", "--timeout", "0.2", f58(jobs["running"][0])).output


def test_attrs_lists_every_attribute(cli):
    names_ = cli("attrs").output.split()
    assert {"state", "result", "t_inactive", "nodelist", "exception_note"} <= set(names_)


def test_durations_follow_rfc_23_wherever_one_is_taken(jobs, cli):
    assert _ids(cli("jobs", "--since", "-0.5h").output)[-1] == f58(jobs["done"][0])
    assert _ids(cli("jobs", "--since", "-90000ms", "--timeout", "2.5s").output)[-1] == f58(jobs["done"][0])
    for bad in ("5M", "1 hour", "-", "ms"):
        result = cli("jobs", "--timeout", bad)
        assert result.exit_code == 2 and "RFC 23" in result.output, bad


def test_a_bad_format_is_an_error_before_any_output_and_help_lists_every_field(redis, cli):
    # no lister, no view: a bad -o is refused before the view is even looked at
    for fmt, message in (("lng", "unknown format 'lng'"), ("{colour}", "'colour'"), ("{id.oct}", "oct"),
                         ("{ntasks:Q}", "bad format"), ("{}", "bad format"), ("{id[0]}", "bad format")):
        result = cli("jobs", "-o", fmt)
        assert result.exit_code == 2 and message in result.output and "-o help lists the fields" in result.output
    assert cli("jobs", "-o", "{t_run:.1f}", "--timeout", "1").exit_code != 2, "a format fit for inactive jobs is fine"
    listing = cli("jobs", "-o", "help").output
    assert "deps" in listing and "endreason" in listing and "inactive_reason (derived)" in listing
    assert all(f"  {name}" in listing for name in ("t_inactive", "nodelist", "status_abbrev")) and "id.f58" in listing


def test_flux_s_named_formats_show_what_their_header_says(jobs, cli):
    lines = cli("jobs", "-a", "-o", "endreason").output.splitlines()
    assert lines[0].split() == ["JOBID", "QUEUE", "USER", "NAME", "ST", "INACTIVE", "INACTIVE-REASON"]
    failed = next(line for line in lines if line.split()[0] == f58(jobs["failed"][0]))
    assert failed.endswith("Exit 3")
    done = next(line for line in lines if line.split()[0] == f58(jobs["done"][0]))
    assert done.endswith("Exit 0")
    deps = cli("jobs", "-o", "deps").output.splitlines()
    assert deps[0].split() == ["JOBID", "QUEUE", "NAME", "URGENCY", "PRIORITY", "STATE", "DEPENDENCIES"]
    assert deps[1].split()[:2] == [f58(jobs["held"][0]), "default"]


def test_cancel_all_cancels_my_active_jobs_only_and_dry_run_only_counts(jobs, redis, cli):
    dry = cli("cancel", "--all", "--dry-run")
    assert dry.exit_code == 0 and dry.output.strip() == "would cancel 2 jobs"
    assert cli("cancel", "--all", "-u", str(ME + 1), "--dry-run").output.strip() == "would cancel 1 jobs"
    done = cli("cancel", "--all", "-m", "clearing up")
    assert done.exit_code == 0 and done.output.strip() == "canceled 2 jobs"
    wait_inactive(redis, jobs["held"] + jobs["running"])
    assert all("exception" in names(redis, j) for j in jobs["held"] + jobs["running"])
    assert "exception" not in names(redis, jobs["other"][0]), "another user's job is left alone"
    assert cli("cancel").exit_code == 2 and "give job IDs or --all" in cli("cancel").output
    assert "go with --all" in cli("cancel", "-u", "all", f58(jobs["other"][0])).output
