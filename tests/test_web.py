"""`jobjournal web`: every page and API route through Starlette's test client, on a real Redis with
a manager and a lister running; bad input gets a 4xx with its reason, never a 500."""

import json
import socket
import urllib.error
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient

from jobjournal.common.ids import f58
from jobjournal.common.keys import LEGACY
from jobjournal.lister import query as q
from jobjournal.manager import client
from jobjournal.web.app import make_app
from tests.helpers import names, submit, wait_caught_up, wait_for, wait_inactive


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
    assert detail["R"]["execution"]["R_lite"] and detail["R"]["execution"]["nodelist"]
    assert client.get(f"/api/v1/jobs/{f58(ids['held'][0])}").json()["R"] is None  # not allocated
    page = client.get(f"/jobs/{job_id}")
    assert page.status_code == 200 and f58(job_id) in page.text and "finish" in page.text and "R_lite" in page.text


def test_the_list_page_shows_the_jobs_and_the_counts(web):
    client, ids = web
    page = client.get("/", params={"state": "inactive"})
    assert page.status_code == 200
    assert all(f58(job_id) in page.text for job_id in ids["done"] + ids["failed"])
    assert f58(ids["held"][0]) not in page.text
    assert "1 pending" in page.text and "4 inactive" in page.text


def test_the_json_list_comes_in_pages_that_follow_one_another(web):
    client, _ = web
    whole = [row["id"] for row in client.get("/api/v1/jobs").json()["jobs"]]
    paged, after = [], None
    while True:
        answer = client.get("/api/v1/jobs", params={"limit": "2", **({"after": after} if after else {})}).json()
        paged += [row["id"] for row in answer["jobs"]]
        after = answer["next"]
        if after is None:
            break
    assert paged == whole and len(whole) == 5
    page = client.get("/", params={"limit": "2"})
    assert 'id="next"' in page.text


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
        ("/api/v1/jobs", {"after": "nowhere:1.0:f1"}, 400, "after must be a page cursor"),
        ("/api/v1/jobs", {"after": "inactive:nan:f1"}, 400, "after must be a page cursor"),
        ("/api/v1/jobs", {"after": "inactive:1.0:not-an-id"}, 400, "after must be a page cursor"),
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


@pytest.fixture
def served(spawn):
    """`jobjournal web` on a free port of the loopback address: its base URL, once it answers."""
    with socket.socket() as probe:  # a free port, found now (the server binds it a moment later)
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = spawn("web", "--port", str(port))
    base = f"http://127.0.0.1:{port}"
    wait_for(lambda: _answers(base), what=f"jobjournal web to answer (see {server.log_path})")
    return base


def _answers(base: str) -> bool:
    """Whether the server answers (a 400 for a bad id: it needs no view)."""
    try:
        urllib.request.urlopen(base + "/api/v1/jobs/not-an-id", timeout=5)
    except urllib.error.HTTPError as err:
        return err.code == 400
    return False


def _get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=5) as answer:
        return json.loads(answer.read())


def _events(response, count: int) -> list[dict]:
    """The next `count` data messages of an event stream."""
    found = []
    while len(found) < count:
        line = response.readline().decode()
        if line.startswith("data: "):
            found.append(json.loads(line[len("data: "):]))
    return found


def test_jobjournal_web_serves_over_http_on_the_loopback_address(redis, start_manager, start_lister, served):
    start_manager()
    start_lister()
    answer = _get_json(served + "/api/v1/stats")
    assert answer["version"] == 1 and answer["total"] == 0


def test_the_event_stream_says_what_the_journal_posts_after_the_client_connected(
    redis, start_manager, start_lister, served
):
    start_manager()
    start_lister()
    [before] = submit(redis)
    wait_inactive(redis, [before])
    with urllib.request.urlopen(served + "/api/v1/events", timeout=30) as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        [job_id] = submit(redis, sim={"runtime": 0})
        seen = []
        while "clean" not in seen:
            seen += [event["name"] for message in _events(stream, 1) for event in message["events"]
                     if event["id"] == job_id]
        assert seen[0] == "submit"


def test_a_jobs_event_stream_gives_its_events_from_after_and_ends_when_it_is_inactive(redis, start_manager, served):
    start_manager()
    [job_id] = submit(redis, sim={"runtime": 0})
    wait_inactive(redis, [job_id])
    with urllib.request.urlopen(f"{served}/api/v1/jobs/{f58(job_id)}/events", timeout=30) as stream:
        body = stream.read().decode()  # the stream ends at the job's clean
    names_seen = [json.loads(line[6:])["name"] for line in body.splitlines() if line.startswith("data: ")]
    assert names_seen == names(redis, job_id)
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(f"{served}/api/v1/jobs/{f58(job_id)}/events?after=yesterday", timeout=30)
    assert refused.value.code == 400 and "after must be" in json.loads(refused.value.read())["error"]


def test_in_a_real_browser_the_list_shows_a_new_job_and_its_state_change_without_reloading(
    redis, start_manager, start_lister, served, tmp_path
):
    import shutil

    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chromium and driver):
        pytest.skip("needs Debian's chromium and chromium-driver (.ci/run installs them when it can)")
    from selenium import webdriver
    from selenium.webdriver.common.by import By

    start_manager()
    start_lister()
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(argument)
    browser = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=driver))
    try:
        browser.get(served + "/")
        wait_for(lambda: browser.find_element(By.ID, "live").text == "live", what="the page to follow the journal")
        browser.execute_script("window.sameDocument = true")
        [job_id] = submit(redis, urgency=0, name="in-the-browser", sim={"runtime": 0})

        def row_state() -> str | None:
            for row in browser.find_elements(By.CSS_SELECTOR, "#jobs tr"):
                if row.get_attribute("data-id") == f58(job_id):
                    return row.find_elements(By.TAG_NAME, "td")[4].text
            return None

        assert wait_for(row_state, what="the new job to appear") in ("PRIORITY", "SCHED")
        client.set_urgency(redis, job_id, 16, userid=1000)
        wait_for(lambda: row_state() == "INACTIVE", what="its state to change on the page")
        assert browser.execute_script("return window.sameDocument === true"), "the page was not reloaded"
        browser.save_screenshot(str(tmp_path / "jobs.png"))
        assert (tmp_path / "jobs.png").stat().st_size > 0
    finally:
        browser.quit()


def test_the_summary_says_who_leads_what_is_queued_what_is_free_and_how_many_jobs_finished(web):
    client, _ = web
    summary = client.get("/api/v1/summary").json()
    assert summary["status"]["manager"] and len(summary["status"]["listers"]) == 1
    assert summary["resources"]["rows"][0]["state"] == "free"
    assert sum(point["jobs"] for point in summary["throughput"]) == 4  # the four that ended in the fixture
    assert {consumer["partition"] for consumer in summary["consumers"]} == {0}
    page = client.get("/summary")
    assert page.status_code == 200 and 'id="throughput"' in page.text and "free" in page.text


def test_the_pages_and_the_summary_say_a_view_is_being_rebuilt_with_its_progress(web, redis):
    client, _ = web
    redis.hset(LEGACY.view_building(), mapping={"generation": 9, "jobs": 2, "started": 1.0})  # as a build marks it
    page = client.get("/")
    assert page.status_code == 200 and "Rebuilding the view:" in page.text and "2 of 5 jobs loaded" in page.text
    assert client.get("/api/v1/summary").json()["builds"] == [{"partition": 0, "loaded": 2, "jobs": 5}]
    assert "2 of 5 jobs loaded" in client.get("/summary").text


def test_with_redis_gone_every_route_answers_503_in_one_line_never_500(tmp_path, settings):
    import msgspec

    from jobjournal.common.connection import connect_url
    from jobjournal.common.redis_server import EmbeddedRedis

    server = EmbeddedRedis(tmp_path / "gone")
    own = connect_url(server.start())
    try:
        app = make_app(own, msgspec.structs.replace(settings, redis_url=server.url))
        server.stop(save=False)
        with TestClient(app, raise_server_exceptions=False) as client:
            for path in ("/", "/api/v1/jobs", "/api/v1/stats", "/api/v1/summary", "/api/v1/jobs/1"):
                answer = client.get(path)
                assert answer.status_code == 503 and "Redis could not answer" in answer.text, (path, answer.text)
            metrics = client.get("/metrics")  # what could be read, and which sections could not
            failed = {s.labels["section"] for family in text_string_to_metric_families(metrics.text)
                      for s in family.samples if s.name == "jobjournal_scrape_errors"}
            assert metrics.status_code == 200 and failed == {"jobs", "partitions", "consumers", "queues"}
    finally:
        own.close()
        server.stop()


def test_sixty_open_event_streams_each_get_a_new_jobs_events_and_the_api_still_answers(
        redis, start_manager, start_lister, served):
    import http.client
    from urllib.parse import urlsplit

    start_manager()
    start_lister()
    where = urlsplit(served)
    streams = []
    for _ in range(60):  # more than Starlette's 40 worker threads: one thread each would starve the API
        connection = http.client.HTTPConnection(where.hostname, where.port, timeout=30)
        connection.request("GET", "/api/v1/events")
        streams.append((connection, connection.getresponse()))
    try:
        assert _get_json(served + "/api/v1/stats")["version"] == 1
        [job_id] = submit(redis, sim={"runtime": 0})
        for _, stream in streams:
            seen = []
            while "submit" not in seen:
                seen += [event["name"] for message in _events(stream, 1) for event in message["events"]
                         if event["id"] == job_id]
    finally:
        for connection, _ in streams:
            connection.close()


def test_a_jobs_page_and_api_show_its_output_escaped_and_say_what_is_not_shown(
        redis, settings, start_manager, start_lister, spawn):
    from jobjournal.web.views import OUTPUT_SHOWN

    start_manager(exec_backend="process")
    start_lister()
    spawn("executor")
    [short] = submit(redis, command=["sh", "-c", "echo '<b>out</b>'; echo err >&2"])
    [long] = submit(redis, command=["sh", "-c", f"head -c {OUTPUT_SHOWN + 1000} /dev/zero | tr '\\0' x"])
    wait_inactive(redis, [short, long])
    wait_caught_up(redis)
    with TestClient(make_app(redis, settings), raise_server_exceptions=True) as web:
        shown = web.get(f"/api/v1/jobs/{f58(short)}").json()["output"]
        assert sorted(shown["text"].splitlines()) == ["<b>out</b>", "err"] and shown["ended"]
        page = web.get(f"/jobs/{short}").text
        assert "&lt;b&gt;out&lt;/b&gt;" in page and "<b>out</b>" not in page
        cut = web.get(f"/api/v1/jobs/{f58(long)}").json()["output"]
        assert len(cut["text"]) == OUTPUT_SHOWN and cut["dropped"] == 1000
        assert "1000 bytes not shown" in web.get(f"/jobs/{long}").text
