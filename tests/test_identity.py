"""Proofs of who sends a request (common/identity.py), on a real Redis; the whole flow with ACL
users is in tests/test_acl_files.py."""

import msgspec
import pytest

from jobjournal.common import identity, inbox, keys, messages
from jobjournal.common.errors import RequestFailed
from jobjournal.common.jobspec import make_jobspec
from jobjournal.manager import client
from tests.helpers import names, part_of, submit, wait_for


class _AsUser:
    """A client that says it logs in as `user` (the proof keys are what matters here)."""

    def __init__(self, redis, user):
        self._redis, self._user = redis, user

    def get_connection_kwargs(self):
        return {"username": self._user}

    def __getattr__(self, name):
        return getattr(self._redis, name)


def test_a_proof_establishes_the_senders_uid_and_covers_exactly_its_request(redis):
    redis.hset(keys.users(), "alice", 1000)
    request = messages.Cancel(ids=[1], userid=0)
    user, nonce = identity.prove(_AsUser(redis, "alice"), identity.request_body(request))
    assert user == "alice"
    assert identity.verified_uid(redis, user, nonce, identity.request_body(request)) == 1000
    other = messages.Cancel(ids=[2], userid=0)
    with pytest.raises(identity.NotAuthenticated, match="no proof from user alice"):
        identity.verified_uid(redis, user, nonce, identity.request_body(other))


def test_a_submissions_proof_is_used_once(redis):
    redis.hset(keys.users(), "alice", 1000)
    body = identity.submission_body(["{}"], 0)
    user, nonce = identity.prove(_AsUser(redis, "alice"), body)
    assert identity.verified_uid(redis, user, nonce, body, once=True) == 1000
    with pytest.raises(identity.NotAuthenticated):
        identity.verified_uid(redis, user, nonce, body, once=True)


@pytest.mark.parametrize(("user", "nonce", "message"), [
    ("", "", "carries no proof"),
    ("alice}x", "n", "not a user name"),
    ("nobody", "n", "no proof from user nobody"),
])
def test_a_request_without_a_valid_proof_is_not_authenticated(redis, user, nonce, message):
    with pytest.raises(identity.NotAuthenticated, match=message):
        identity.verified_uid(redis, user, nonce, b"body")


def test_a_proved_user_without_a_uid_is_told_how_to_get_one(redis):
    user, nonce = identity.prove(_AsUser(redis, "carol"), b"body")
    with pytest.raises(identity.NotAuthenticated, match="jobjournal user add carol --uid UID"):
        identity.verified_uid(redis, user, nonce, b"body")


def test_the_default_user_proves_nothing(redis):
    assert identity.prove(redis, b"body") == ("", "")
    assert redis.keys("jj:proof:*") == []


def test_with_identity_acl_a_submission_written_to_the_inbox_by_anyone_but_ingest_is_set_aside(redis, start_manager):
    start_manager(identity="acl")
    spec = make_jobspec(command=["true"], sim={"runtime": 0})
    forged = messages.SubmitJobs(jobs=[messages.NewJob(id=12345, userid=0, t_submit=1.0, jobspec=spec)])
    inbox.send(redis, forged)
    [sealed] = submit(redis)  # as an ingest worker writes it: sealed
    wait_for(lambda: names(redis, sealed)[-1:] == ["clean"])
    reasons = [fields[b"reason"] for _, fields in redis.xrange(keys.dead_letters())]
    assert reasons == [b"not authenticated: a submission not sealed by an ingest worker"]
    assert not redis.exists(part_of(redis, 12345).job_eventlog(12345))


def test_with_identity_acl_a_proved_request_acts_once(redis, start_manager):
    start_manager(identity="acl")
    redis.hset(keys.users(), "alice", 1000)
    [job_id] = submit(redis, userid=1000, urgency=0)
    request = messages.SetUrgency(id=job_id, urgency=16, userid=0, reply_to="first")
    request.user, request.proof = identity.prove(_AsUser(redis, "alice"), identity.request_body(request))
    inbox.send(redis, request)
    assert messages.decode_reply(redis.blpop([keys.reply("first", "alice")], timeout=20)[1]).errors == {}
    inbox.send(redis, msgspec.structs.replace(request, reply_to="again"))  # a copy, with a reply list of its own
    again = redis.blpop([keys.reply("again", "alice")], timeout=20)[1]
    assert "not authenticated" in messages.decode_reply(again).error
    assert len(redis.xrange(keys.dead_letters())) == 1  # set aside, with its reason


def test_with_identity_acl_a_manager_refuses_an_unproved_request_in_one_line(redis, start_manager):
    start_manager(identity="acl")
    [job_id] = submit(redis, sim={"runtime": 600})
    wait_for(lambda: "start" in names(redis, job_id))
    with pytest.raises(RequestFailed, match="^not authenticated: the request carries no proof"):
        client.cancel(redis, [job_id], userid=1000)
    assert names(redis, job_id)[-1] == "start"
