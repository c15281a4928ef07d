"""Metrics (Prometheus text, parsed with prometheus-client's own parser) from a manager's and a
lister's --metrics-port and from `jobjournal web`'s /metrics, on a real Redis with the processes
running; and `jobjournal ready`, the readiness probe."""

import json
import socket
import urllib.request

from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient

from jobjournal.common.keys import LEGACY
from jobjournal.common.layout import read_layout
from jobjournal.lister.progress import partition_progress
from jobjournal.web.app import make_app
from tests.helpers import process_log, submit, wait_caught_up, wait_for, wait_inactive


def _free_port() -> int:
    with socket.socket() as probe:  # a free port, found now (the process binds it a moment later)
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _scrape(port: int) -> dict[str, list]:
    """The samples of each metric family served on `port`, by family name; {} while nothing answers."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
            text = answer.read().decode()
    except OSError:
        return {}
    return {family.name: family.samples for family in text_string_to_metric_families(text)}


def _value(samples: list, name: str, **labels) -> float:
    """The value of the sample `name` with these labels (the sum over those it matches)."""
    return sum(sample.value for sample in samples
               if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()))


def test_a_manager_and_a_lister_serve_their_own_metrics_on_the_ports_they_were_given(spawn, redis, cli):
    manager_port, lister_port = _free_port(), _free_port()
    spawn("manager", "--metrics-port", str(manager_port))
    spawn("lister", "--metrics-port", str(lister_port))
    wait_for(lambda: _value(_scrape(lister_port).get("jobjournal_lister_applying", []), "jobjournal_lister_applying"),
             what="the lister to apply (its first view built, from an empty journal)")
    job_ids = submit(redis, 20, sim={"runtime": 0})
    wait_inactive(redis, job_ids)
    wait_caught_up(redis)
    posted = int(redis.hget(LEGACY.journal_head(), "seq"))

    def counted() -> bool:
        manager, lister = _scrape(manager_port), _scrape(lister_port)
        return (_value(manager.get("jobjournal_manager_events_posted", []), "jobjournal_manager_events_posted_total")
                == posted and _value(lister.get("jobjournal_lister_events_applied", []),
                                     "jobjournal_lister_events_applied_total") == posted)

    wait_for(counted, what="the manager's posted and the lister's applied counts to reach the journal's seq")
    manager, lister = _scrape(manager_port), _scrape(lister_port)
    assert _value(manager["jobjournal_manager_leading"], "jobjournal_manager_leading") == 1
    assert _value(manager["jobjournal_manager_terms"], "jobjournal_manager_terms_total") == 1
    assert _value(manager["jobjournal_manager_step_seconds"], "jobjournal_manager_step_seconds_count") > 0
    assert _value(lister["jobjournal_lister_partitions_held"], "jobjournal_lister_partitions_held", partition="0") == 1
    assert _value(lister["jobjournal_lister_build_seconds"], "jobjournal_lister_build_seconds_count") == 1
    # the manager serves the store's metrics too (headless setups): the same counts as `jobs --stats`
    stats = json.loads(cli("jobs", "--stats", "--json").output)
    by_state = {s.labels["state"]: s.value for s in manager["jobjournal_jobs"]}
    assert by_state == {state: float(count) for state, count in stats["states"].items()} and by_state["INACTIVE"] == 20
    by_result = {s.labels["result"]: s.value for s in manager["jobjournal_jobs_result"]}
    assert by_result["COMPLETED"] == stats["successful"] and by_result["FAILED"] == stats["failed"]
    assert _value(manager["jobjournal_journal_events"], "jobjournal_journal_events_total", partition="0") == posted


def test_a_metrics_port_already_taken_gets_one_line_and_a_nonzero_exit(spawn):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        lister = spawn("lister", "--metrics-port", str(taken.getsockname()[1]))
        assert lister.wait(30) != 0
    output = process_log(lister)
    assert "cannot serve metrics on 127.0.0.1:" in output and "Traceback" not in output


def test_the_web_metrics_have_each_partitions_progress_the_queues_and_query_latencies(
        redis, settings, start_manager, start_lister):
    start_manager(partitions=3)
    start_lister(partitions=3)
    job_ids = submit(redis, 12, sim={"runtime": 0})
    wait_inactive(redis, job_ids)
    wait_caught_up(redis)
    layout = read_layout(redis)
    with TestClient(make_app(redis, settings)) as client:
        client.get("/api/v1/jobs")
        families = {family.name: family.samples for family in text_string_to_metric_families(
            client.get("/metrics").text)}
    for part in layout.partitions:
        seq = int(redis.hget(part.journal_head(), "seq") or 0)
        index = str(part.index)
        assert _value(families["jobjournal_journal_events"], "jobjournal_journal_events_total", partition=index) == seq
        assert _value(families["jobjournal_view_events_applied"], "jobjournal_view_events_applied_total",
                      partition=index) == seq
        assert _value(families["jobjournal_view_behind_events"], "jobjournal_view_behind_events",
                      partition=index) == 0
        assert len([s for s in families["jobjournal_lister_lease_holder"] if s.labels["partition"] == index]) == 1
    assert sum(s.value for s in families["jobjournal_partition_jobs"]) == 12
    assert families["jobjournal_view_build_jobs_loaded"] == []  # no build in progress
    assert {s.labels["queue"] for s in families["jobjournal_queue_length"]} == {"ingest", "exec"}
    assert len(families["jobjournal_manager_lease_holder"]) == 1
    assert _value(families["jobjournal_web_query_seconds"], "jobjournal_web_query_seconds_count", query="list") == 1


def test_a_build_in_progress_shows_the_jobs_it_has_loaded_of_those_the_partition_holds(redis, start_manager):
    start_manager()
    wait_inactive(redis, submit(redis, 5, sim={"runtime": 0}))
    redis.hset(LEGACY.view_building(), mapping={"generation": 1, "jobs": 2, "started": 1.0})  # as a build marks it
    [progress] = partition_progress(redis, read_layout(redis))
    assert (progress.building, progress.jobs, progress.applied, progress.holder) == (2, 5, None, None)
    assert progress.behind == progress.posted > 0


def test_ready_says_whether_a_process_on_this_host_holds_the_lease(cli, redis, start_manager):
    assert cli("ready", "manager").exit_code == 1
    start_manager()
    answer = cli("ready", "manager")
    assert answer.exit_code == 0 and f"ready: {socket.gethostname()}:" in answer.output
    lister = cli("ready", "lister")
    assert lister.exit_code == 1 and "held by none" in lister.output
    redis.set(LEGACY.lister_lease(), "another-host:42:0123456789ab", px=60_000)
    elsewhere = cli("ready", "lister")
    assert elsewhere.exit_code == 1 and "held by another-host:42" in elsewhere.output


def test_ready_refuses_a_role_it_does_not_know(cli):
    unknown = cli("ready", "executor")
    assert unknown.exit_code == 2 and "'executor' is not one of" in unknown.output
    assert cli("ready").exit_code == 2


def test_a_full_journal_consumers_lag_is_given_in_entries_and_seconds(redis, settings, start_manager, start_lister):
    from jobjournal.common.consumers import register_consumer
    from jobjournal.system import consumer_lag

    start_manager()
    start_lister()
    wait_inactive(redis, submit(redis, 3, sim={"runtime": 0}))
    entries = redis.xrange(LEGACY.journal())
    head_seq = int(redis.hget(LEGACY.journal_head(), "seq"))
    register_consumer(redis, LEGACY, "behind", entries[4][0].decode())  # read up to the fifth entry
    register_consumer(redis, LEGACY, "gone", "1-0")  # its entry was never there (or trimmed long ago)
    lag = {row["consumer"]: row for row in consumer_lag(redis, read_layout(redis))}
    assert lag["behind"]["behind_entries"] == head_seq - 5 and lag["behind"]["behind_s"] >= 0
    assert lag["gone"]["behind_entries"] is None
    with TestClient(make_app(redis, settings)) as client:
        families = {family.name: family.samples for family in text_string_to_metric_families(
            client.get("/metrics").text)}
    assert _value(families["jobjournal_consumer_behind_entries"], "jobjournal_consumer_behind_entries",
                  consumer="behind") == head_seq - 5
    assert not [s for s in families["jobjournal_consumer_behind_entries"] if s.labels["consumer"] == "gone"]
