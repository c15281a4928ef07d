"""`jobjournal web`: every page and API route through Starlette's test client, on a real Redis with
a manager and a lister running; bad input gets a 4xx with its reason, never a 500."""

import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient

from jobjournal.common.ids import f58
from jobjournal.lister import query as q
from jobjournal.web.app import make_app
from tests.helpers import submit, wait_caught_up, wait_inactive


@pytest.fixture
def web(redis, settings, start_manager, start_lister):
    """A web client on a store with finished jobs of two users and one held job: (client, ids)."""
    start_manager()
    start_lister()
    done = submit(redis, 3, sim={"runtime": 0}, name="alpha")
    failed = submit(redis, 1, sim={"runtime": 0, "exit_code": 3}, name="beta", userid=1001)
    held = submit(redis, 1, urgency=0, name="held")
    wait_inactive(redis, done + failed)
    wait_caught_up(redis)
    with TestClient(make_app(redis, settings), raise_server_exceptions=True) as client:
        yield client, {"done": done, "failed": failed, "held": held}


def test_the_json_list_has_every_job_newest_first_with_filters_like_jobs(web):
    client, ids = web
    every = client.get("/api/v1/jobs").json()
    assert every["version"] == 1 and every["count"] == 5
    assert [row["id"] for row in every["jobs"]][0] == ids["held"][0]  # pending first, then newest inactive
    failed = client.get("/api/v1/jobs", params={"state": "failed"}).json()["jobs"]
    assert [row["id"] for row in failed] == ids["failed"]
    mine = client.get("/api/v1/jobs", params={"user": "1001"}).json()["jobs"]
    assert {row["userid"] for row in mine} == {1001}
    named = client.get("/api/v1/jobs", params={"constraint": '{"name": ["alpha"]}', "limit": "2"}).json()
    assert named["count"] == 2 and {row["name"] for row in named["jobs"]} == {"alpha"}


def test_a_jobs_api_and_page_show_its_attributes_eventlog_and_jobspec(web):
    client, ids = web
    job_id = ids["failed"][0]
    detail = client.get(f"/api/v1/jobs/{f58(job_id)}").json()
    assert detail["attributes"]["result"] == "FAILED"
    assert [event["name"] for event in detail["eventlog"]][:2] == ["submit", "validate"]
    assert detail["jobspec"]["name"] == "beta" and "environment" not in detail["jobspec"]
    page = client.get(f"/jobs/{job_id}")
    assert page.status_code == 200 and f58(job_id) in page.text and "finish" in page.text


def test_the_list_page_shows_the_jobs_and_the_counts(web):
    client, ids = web
    page = client.get("/", params={"state": "inactive"})
    assert page.status_code == 200
    assert all(f58(job_id) in page.text for job_id in ids["done"] + ids["failed"])
    assert f58(ids["held"][0]) not in page.text
    assert "1 pending" in page.text and "4 inactive" in page.text


@pytest.mark.parametrize(
    ("path", "params", "status", "says"),
    [
        ("/api/v1/jobs/not-an-id", {}, 400, "invalid job id"),
        ("/api/v1/jobs/123456789", {}, 404, "no such job"),
        ("/api/v1/jobs", {"constraint": '{"color": ["red"]}'}, 400, "color"),
        ("/api/v1/jobs", {"constraint": "{"}, 400, "not JSON"),
        ("/api/v1/jobs", {"limit": "0"}, 400, "limit must be"),
        ("/api/v1/jobs", {"since": "tomorrow"}, 400, "is not a time"),
        ("/api/v1/jobs", {"user": "-1"}, 400, "user must be"),
        ("/api/v1/jobs", {"page": "x"}, 400, "unknown parameter 'page'"),
        ("/api/v1/jobs", {"state": "sleeping"}, 400, "sleeping"),
    ],
)
def test_bad_input_gets_a_4xx_with_its_reason_never_a_500(web, path, params, status, says):
    client, _ = web
    answer = client.get(path, params=params)
    assert answer.status_code == status and says in answer.json()["error"], answer.text


def test_a_bad_request_for_a_page_is_a_page_that_says_why(web):
    client, _ = web
    answer = client.get("/jobs/123456789")
    assert answer.status_code == 404 and "no such job" in answer.text and "<html" in answer.text


def test_metrics_parse_as_prometheus_text_and_match_the_stats(web, redis):
    client, _ = web
    answer = client.get("/metrics")
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/plain")
    families = {family.name: family for family in text_string_to_metric_families(answer.text)}
    by_state = {sample.labels["state"]: sample.value for sample in families["jobjournal_jobs"].samples}
    by_result = {sample.labels["result"]: sample.value for sample in families["jobjournal_jobs_result"].samples}
    stats = q.stats(redis)
    assert by_state == {state: float(count) for state, count in stats["states"].items()}
    assert by_result["FAILED"] == stats["failed"] == 1 and by_result["COMPLETED"] == stats["successful"] == 3
    assert families["jobjournal_journal_entries"].samples[0].value > 0


def test_jobjournal_web_serves_over_http_on_the_loopback_address(redis, spawn, start_manager, start_lister):
    import json
    import socket
    import urllib.request

    from tests.helpers import wait_for

    start_manager()
    start_lister()
    with socket.socket() as probe:  # a free port, found now (the server binds it a moment later)
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = spawn("web", "--port", str(port))

    def stats():
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/stats", timeout=5) as answer:
            return json.loads(answer.read())

    answer = wait_for(stats, what=f"jobjournal web to answer (see {server.log_path})")
    assert answer["version"] == 1 and answer["total"] == 0
