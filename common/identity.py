"""Who sends a request, as Redis authenticated it (setting `identity` = "acl").

Each person (or group) has an ACL user of their own, mapped to a uid in `keys.users()` by
`jobjournal user add`. Its ACL rules let it write `jj:proof:{<user>}:*` and no other user's. A
client logged in as such a user proves each request: it writes the request's digest under a
fresh nonce in its own proof key, and names the user and the nonce in the request. The manager
(inbox requests) and the ingest worker (submissions) read the proof from the named user's key:
only that user could have written it, so the uid is that user's, whatever uid the request states.
A proof is used once (GETDEL: a copied task or inbox entry cannot act again). Submissions reach
the manager through the inbox written by an ingest worker, which seals each (an HMAC under
`keys.ingest_secret()`, readable by the worker and manager roles only): with identity=acl the
manager takes no submission that a person wrote to the inbox directly.

With `identity` = "trusted" (the default, for the embedded single-user server) the uid a request
states is believed: every local user who can reach Redis is trusted (docs/guarantees.md).
"""

from __future__ import annotations

import hashlib
import secrets

import msgspec

from jobjournal.common import keys, macs, messages
from jobjournal.common.errors import JobJournalError

PROOF_TTL = 86400
"""Seconds a proof lasts: a request queued while no manager runs is still proved when one starts."""
USER_NAME = messages.USER_NAME
ROLES = frozenset({"default", "admin", "manager", "worker", "executor", "submitter", "lister", "reader"})
"""The users deploy/users.acl ships: not names for people."""
DEFAULT_USER = "default"


class NotAuthenticated(JobJournalError):
    """A request whose sender cannot be established (no proof, a wrong one, an unknown user)."""


def username_of(redis) -> str:
    """The ACL user this client logs in as ("default" when it names none)."""
    kwargs = redis.get_connection_kwargs() if hasattr(redis, "get_connection_kwargs") else \
        redis.connection_pool.connection_kwargs
    return kwargs.get("username") or DEFAULT_USER


def digest(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def request_body(message: messages.Request) -> bytes:
    """What an inbox request's proof covers: all of it (its reply list too) but the proof."""
    return messages.encode(msgspec.structs.replace(message, user="", proof=""))


def submission_body(jobspecs: list[str], userid: int) -> bytes:
    return msgspec.json.encode([jobspecs, userid])


def prove(redis, body: bytes) -> tuple[str, str]:
    """(user, nonce) proving that this client's ACL user sends `body`; ("", "") for the default
    user, which has nothing to prove with."""
    user = username_of(redis)
    if user == DEFAULT_USER:
        return "", ""
    nonce = secrets.token_hex(16)
    redis.set(keys.proof(user, nonce), digest(body), ex=PROOF_TTL)
    return user, nonce


def verified_uid(redis, user: str, nonce: str, body: bytes, once: bool = False) -> int:
    """The uid of the ACL user who proved `body`; NotAuthenticated if nobody did."""
    if not user or not nonce:
        raise NotAuthenticated("not authenticated: the request carries no proof (log in as your own ACL user)")
    if not USER_NAME.fullmatch(user):
        raise NotAuthenticated(f"not authenticated: {user!r} is not a user name")
    with redis.pipeline(transaction=False) as pipe:
        (pipe.getdel if once else pipe.get)(keys.proof(user, nonce))
        pipe.hget(keys.users(), user)
        proved, uid = pipe.execute()
    if proved is None or proved.decode() != digest(body):
        raise NotAuthenticated(f"not authenticated: no proof from user {user} for this request")
    if uid is None:
        raise NotAuthenticated(f"user {user} has no uid: `jobjournal user add {user} --uid UID` maps it")
    return int(uid)


def ingest_key(redis) -> bytes:
    """The key ingest workers seal submissions with, created by the first that asks."""
    return macs.shared_secret(redis, keys.ingest_secret())


def _sealed_content(submission: messages.SubmitJobs) -> bytes:
    return messages.encode(msgspec.structs.replace(submission, seal="", user="", proof="", reply_to=""))


def sealed(key: bytes, submission: messages.SubmitJobs) -> messages.SubmitJobs:
    return msgspec.structs.replace(submission, seal=macs.mac(key, _sealed_content(submission)))


def sealed_by_ingest(key: bytes, submission: messages.SubmitJobs) -> bool:
    return macs.matches(key, _sealed_content(submission), submission.seal)


def person_rules(user: str, redis7: bool) -> list[str]:
    """The ACL rules of a person's user: submit and send requests (rq: an ingest worker forwards
    them to the inbox) with proofs of its own, read its own replies; on Redis 7, also read (only)
    the layout, the manager lease, the views, the eventlogs and the outputs, for `jobs`, `job wait`
    and `job output`."""
    if not USER_NAME.fullmatch(user):
        raise JobJournalError(f"{user!r} is not a user name (letters, digits, '_', '.', '-')")
    # no inbox: a person's requests go through an ingest worker (manager/forward.py), as a write on
    # the stream would also let it trim others' requests away
    rules = ["~rq:*", f"~jj:reply:{{{user}}}:*", f"~jj:proof:{{{user}}}:*"]
    if redis7:  # Redis 6.2 cannot make a pattern read-only: there, a person reads nothing of the store's
        rules += [f"%R~{pattern}" for pattern in (
            "jj:layout", "jj:manager:lease", "jj:view:*", "jj:{*}:view:*", "jj:job:*:eventlog",
            "jj:{*}:job:*:eventlog", "jj:job:*:output", "jj:{*}:job:*:output", "jj:journal:head",
            "jj:{*}:journal:head", "jj:lister:*", "jj:{*}:lister:lease")]
    return [*rules, "&*", "-@all", "+@connection", "+@read", "+@write", "+@stream", "+@list", "+@transaction",
            "+@scripting", "-@dangerous"]
