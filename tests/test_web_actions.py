"""The web view's actions (cancel, urgency): off by default; each logged in as the person's own
Redis ACL user (HTTP Basic, checked by Redis), acting as that user's uid under the manager's owner
rules (identity=acl: proved); bad input and other sites refused with a reason. Real Redis, real
manager and lister, Starlette's test client."""

import base64

import msgspec
import pytest
from starlette.testclient import TestClient

from jobjournal.common import events as ev
from jobjournal.common import identity, keys
from jobjournal.common.ids import f58
from jobjournal.web.app import make_app
from tests.helpers import eventlog, names, submit, wait_caught_up, wait_for

PASSWORD = "s3cret-of-alice"

def _basic(user: str, password: str) -> dict:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}

@pytest.fixture
def people(redis):
    """ACL users alice (uid 1000) and bob (uid 1001), and carol (no uid), removed after the test."""
    redis7 = int(str(redis.info("server")["redis_version"]).split(".")[0]) >= 7
    for name, uid in (("alice", 1000), ("bob", 1001), ("carol", None)):
        redis.execute_command("ACL", "SETUSER", name, "reset", "on", f">{PASSWORD}",
                              *identity.person_rules(name, redis7=redis7))
        if uid is not None:
            redis.hset(keys.users(), name, uid)
    yield
    for name in ("alice", "bob", "carol"):
        redis.execute_command("ACL", "DELUSER", name)

@pytest.fixture
def held(redis, settings, start_manager, start_lister, people, spawn):
    """A manager (identity=acl), lister and ingest worker (people's requests go through it); a held
    job of alice's and one of bob's: ids."""
    start_manager(identity="acl")
    start_lister()
    spawn("worker", env={"JOBJOURNAL_IDENTITY": "acl"})
    [alices] = submit(redis, 1, urgency=0, userid=1000)
    [bobs] = submit(redis, 1, urgency=0, userid=1001)
    wait_for(lambda: names(redis, bobs)[-1:] == ["priority"], what="bob's job to be held")
    wait_caught_up(redis)
    return {"alice": alices, "bob": bobs}

def _client(redis, settings, actions: bool = True) -> TestClient:
    return TestClient(make_app(redis, settings, actions=actions), base_url="http://testserver")

def _post_form_as_alice(web, job: str, action: str, data: dict):
    """Post a job page's form as alice; the answer must send her back to the job's page."""
    answer = web.post(f"/jobs/{job}/{action}", data=data, headers=_basic("alice", PASSWORD), follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"] == f"/jobs/{job}"

def test_the_web_view_is_read_only_unless_started_with_actions(redis, settings, held):
    with _client(redis, settings, actions=False) as web:
        answer = web.post(f"/api/v1/jobs/{f58(held['alice'])}/cancel", headers=_basic("alice", PASSWORD))
        assert answer.status_code == 403 and "read-only" in answer.json()["error"]
        assert "Cancel the job" not in web.get(f"/jobs/{f58(held['alice'])}").text
    assert names(redis, held["alice"])[-1] == "priority"

@pytest.mark.parametrize("queues", ["the store", "named apart"])
def test_a_person_cancels_their_own_job_logged_in_as_their_acl_user(redis, settings, held, redis_url, queues):
    if queues == "named apart":  # rq's Redis named on its own (it is another server beside a cluster store)
        settings = msgspec.structs.replace(settings, queue_redis_url=redis_url)
    with _client(redis, settings) as web:
        assert "Cancel the job" in web.get(f"/jobs/{f58(held['alice'])}").text
        answer = web.post(f"/api/v1/jobs/{f58(held['alice'])}/cancel", json={"note": "not needed"},
                          headers=_basic("alice", PASSWORD))
        assert answer.status_code == 200, answer.text
        assert answer.json() == {"version": 1, "done": f"job {f58(held['alice'])} canceled"}
    wait_for(lambda: names(redis, held["alice"])[-1:] == ["clean"], what="alice's job to end")
    assert "exception" in names(redis, held["alice"])

def test_a_person_may_not_cancel_another_persons_job(redis, settings, held):
    with _client(redis, settings) as web:
        answer = web.post(f"/api/v1/jobs/{f58(held['bob'])}/cancel", headers=_basic("alice", PASSWORD))
    assert answer.status_code == 403 and "not the job's owner" in answer.json()["error"]
    assert names(redis, held["bob"])[-1] == "priority"

def test_the_urgency_form_sets_it_and_comes_back_to_the_job_page(redis, settings, held):
    job = f58(held["alice"])
    with _client(redis, settings) as web:
        _post_form_as_alice(web, job, "urgency", {"urgency": "20"})
    wait_for(lambda: "alloc" in names(redis, held["alice"]) or names(redis, held["alice"])[-1] == "urgency",
             what="the urgency event")
    assert "urgency" in names(redis, held["alice"])

@pytest.mark.parametrize(("headers", "status", "says"), [
    ({}, 401, "log in as your Redis ACL user"),
    (_basic("alice", "wrong"), 401, "Redis refused the login of alice"),
    (_basic("nobody", PASSWORD), 401, "Redis refused the login of nobody"),
    (_basic("carol", PASSWORD), 403, "user carol has no uid"),
    ({"Authorization": "Basic !!!"}, 400, "not Basic credentials"),
    ({**_basic("alice", PASSWORD), "Origin": "http://elsewhere.example"}, 403, "from another site"),
])
def test_an_action_without_a_valid_login_from_this_site_changes_nothing(redis, settings, held, headers, status, says):
    with _client(redis, settings) as web:
        answer = web.post(f"/api/v1/jobs/{f58(held['alice'])}/cancel", headers=headers)
    assert answer.status_code == status and says in answer.json()["error"], answer.text
    if status == 401:
        assert answer.headers["www-authenticate"].startswith("Basic ")
    assert names(redis, held["alice"])[-1] == "priority"

@pytest.mark.parametrize(("body", "says"), [
    ({"urgency": 32}, "urgency must be a whole number from 0 to 31"),
    ({"urgency": "high"}, "urgency must be a whole number from 0 to 31"),
    ({"urgency": True}, "urgency must be a whole number from 0 to 31"),
    ([1, 2], "must be a JSON object"),
])
def test_a_bad_action_body_gets_a_400_with_its_reason(redis, settings, held, body, says):
    with _client(redis, settings) as web:
        answer = web.post(f"/api/v1/jobs/{f58(held['alice'])}/urgency", json=body, headers=_basic("alice", PASSWORD))
    assert answer.status_code == 400 and says in answer.json()["error"], answer.text

def test_an_action_on_a_bad_or_unknown_job_id_says_why(redis, settings, held):
    with _client(redis, settings) as web:
        bad = web.post("/api/v1/jobs/not-an-id/cancel", headers=_basic("alice", PASSWORD))
        unknown = web.post("/api/v1/jobs/123456789/cancel", headers=_basic("alice", PASSWORD))
    assert bad.status_code == 400 and "invalid job id" in bad.json()["error"]
    assert unknown.status_code in (403, 409) and unknown.json()["error"], unknown.text

def test_credentials_in_the_stores_url_never_stand_in_for_the_persons_own(redis, settings, held, redis_url):
    """redis-py lets a URL's user and password win over the ones given apart: a web view whose
    JOBJOURNAL_REDIS_URL logs in as its own user must still check each person's password."""
    import msgspec

    redis.execute_command("ACL", "SETUSER", "webview", "reset", "on", ">webview-pw", "~*", "&*", "+@all")
    try:
        scheme, _, rest = redis_url.partition("://")
        own = msgspec.structs.replace(settings, redis_url=f"{scheme}://webview:webview-pw@{rest}")
        with _client(redis, own) as web:
            wrong = web.post(f"/api/v1/jobs/{f58(held['bob'])}/cancel", headers=_basic("bob", "not-his"))
            assert wrong.status_code == 401 and "refused the login of bob" in wrong.json()["error"]
            right = web.post(f"/api/v1/jobs/{f58(held['alice'])}/cancel", headers=_basic("alice", PASSWORD))
            assert right.status_code == 200, right.text
        assert names(redis, held["bob"])[-1] == "priority"
    finally:
        redis.execute_command("ACL", "DELUSER", "webview")

def test_after_a_failed_login_the_next_try_for_that_user_waits_a_second(redis, settings, held):
    with _client(redis, settings) as web:
        assert web.post(f"/api/v1/jobs/{f58(held['alice'])}/cancel",
                        headers=_basic("alice", "guess-1")).status_code == 401
        again = web.post(f"/api/v1/jobs/{f58(held['alice'])}/cancel", headers=_basic("alice", PASSWORD))
        assert again.status_code == 429 and "wait a second" in again.json()["error"]
        bob = web.post(f"/api/v1/jobs/{f58(held['bob'])}/urgency", json={"urgency": 3}, headers=_basic("bob", PASSWORD))
        assert bob.status_code == 200  # another user is not held back
    assert names(redis, held["alice"])[-1] == "priority"

def test_a_body_over_4_kib_is_refused_before_it_is_read(redis, settings, held):
    with _client(redis, settings) as web:
        answer = web.post(f"/api/v1/jobs/{f58(held['alice'])}/cancel", content=b"x" * 5000,
                          headers=_basic("alice", PASSWORD))
    assert answer.status_code == 413 and "at most 4096 bytes" in answer.json()["error"]

def test_the_cancel_form_cancels_with_its_note_and_comes_back_to_the_job_page(redis, settings, held):
    job = f58(held["alice"])
    with _client(redis, settings) as web:
        _post_form_as_alice(web, job, "cancel", {"note": "from the page"})
        refused = web.post(f"/jobs/{f58(held['bob'])}/cancel", data={}, headers=_basic("alice", PASSWORD))
        assert refused.status_code == 403 and "not the job&#39;s owner" in refused.text and "<html" in refused.text
    wait_for(lambda: names(redis, held["alice"])[-1:] == ["clean"], what="alice's job to end")
    [exception] = [event for event in eventlog(redis, held["alice"]) if isinstance(event, ev.Exception_)]
    assert exception.note == "from the page"
