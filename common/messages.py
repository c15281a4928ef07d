"""Requests to the manager (its inbox stream) and its replies, as a msgspec tagged union.

An inbox entry has one field, `msg`: the request as JSON with a `request` tag.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

import msgspec
from msgspec import Meta

from jobjournal.common.errors import CorruptEntry
from jobjournal.common.jobspec import Jobspec

USER_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")
"""What an ACL user's name may be (it goes into key names: proofs, replies)."""
Name = Annotated[str, Meta(max_length=256)]
"""A name, token or reply list of a request."""


class Request(msgspec.Struct, tag_field="request", kw_only=True, omit_defaults=True):
    """Base of every inbox request. `reply_to` names the request's reply list ('' = none);
    `user` and `proof` say who sends it, with `identity=acl` (common/identity.py)."""

    reply_to: Name = ""
    user: Name = ""
    proof: Name = ""


UserId = Annotated[int, Meta(ge=0, le=2**32 - 1)]
JobId = Annotated[int, Meta(ge=0, le=2**63 - 1)]
"""Our ids are time-ordered and stay below 2**63 until the year 2527 (msgspec bounds are int64)."""
Timestamp = Annotated[float, Meta(ge=0, le=1e10)]
"""Seconds since 1970, before the year 2286: a forged 1e15 never reaches a listing."""
Seconds = Annotated[float, Meta(ge=0, le=1e10)]
MAX_IDS = 10000
"""Jobs one request may name or submit: a longer list is refused as it decodes (a forged cancel of
2M ids held the manager past its lease, again at every restart). Clients send more in several."""
MAX_NOTE = 4096
"""Characters of a note (it goes into an exception event, so into the journal and every view)."""
Ids = Annotated[list[JobId], Meta(max_length=MAX_IDS)]
Note = Annotated[str, Meta(max_length=MAX_NOTE)]


class NewJob(msgspec.Struct, kw_only=True, omit_defaults=True):
    id: JobId
    userid: UserId
    t_submit: Timestamp
    jobspec: Jobspec


class SubmitJobs(Request, tag="submit"):
    jobs: Annotated[list[NewJob], Meta(max_length=MAX_IDS)]
    seal: str = ""
    """The ingest worker's HMAC of the submission (common/identity.py): with identity=acl the
    manager takes no submission written to the inbox by anyone else."""


class Cancel(Request, tag="cancel"):
    ids: Ids
    userid: UserId
    note: Note = ""


class SetUrgency(Request, tag="urgency"):
    id: JobId
    urgency: Annotated[int, Meta(ge=0, le=31)]
    userid: UserId


class RaiseException(Request, tag="raise"):
    ids: Ids
    userid: UserId
    type: Annotated[str, Meta(min_length=1, max_length=64, pattern=r"^\S+$")]
    severity: Annotated[int, Meta(ge=0, le=7)] = 0
    note: Note = ""


class Purge(Request, tag="purge"):
    ids: Ids = []
    age_limit: Seconds | None = None
    num_limit: Annotated[int, Meta(ge=0)] | None = None
    force: bool = False


class JournalRequest(Request, tag="journal"):
    """Ask for a full journal: backlog entries, then a sentinel, in journal_reply(consumer).
    `reply_version` is the reply format the consumer reads (1 when a request lacks it)."""

    consumer: Name
    allow: Annotated[list[Name], Meta(max_length=64)] = []
    deny: Annotated[list[Name], Meta(max_length=64)] = []
    reply_version: int = 1
    partitions: Annotated[list[int], Meta(max_length=1024)] = []  # layout.MAX_PARTITIONS
    """Indexes of the partitions wanted; [] for all."""


class ExecStarted(Request, tag="exec-started"):
    id: JobId
    mac: Name = ""
    """The report's HMAC under the dispatch secret (manager/exec_dispatch.py): a report without the
    right one is refused."""


class ExecFinished(Request, tag="exec-finished"):
    id: JobId
    mac: Name = ""
    status: int | None = None
    """Wait status; None when the command never started."""
    timeout: bool = False
    error: Note = ""


AnyRequest = (
    SubmitJobs | Cancel | SetUrgency | RaiseException | Purge | JournalRequest | ExecStarted
    | ExecFinished
)


class Reply(msgspec.Struct, omit_defaults=True):
    """The manager's answer: per-job errors by id (as text), and optional data."""

    errors: dict[str, str] = {}
    data: Any = None
    error: str = ""
    """The whole request was refused (e.g. not authenticated): why."""


_encoder = msgspec.json.Encoder()
_request_decoder = msgspec.json.Decoder(AnyRequest)
_reply_decoder = msgspec.json.Decoder(Reply)


def encode(message: Request | Reply) -> bytes:
    return _encoder.encode(message)


class _ReplyTo(msgspec.Struct):
    reply_to: str = ""
    user: str = ""


_reply_to_decoder = msgspec.json.Decoder(_ReplyTo)


def reply_to_of(data: bytes) -> tuple[str, str]:
    """(reply list, user) a request that does not decode still names (("", "") if none can be read;
    the user "" unless it is a user name)."""
    try:
        found = _reply_to_decoder.decode(data)
    except (msgspec.ValidationError, msgspec.DecodeError):
        return "", ""
    reply_to = found.reply_to if len(found.reply_to) <= 64 and found.reply_to.isalnum() else ""
    return reply_to, reply_user(found.user)


def reply_user(user: str) -> str:
    """The user whose name a reply list goes under: `user` if it is a user name, else "" (the
    shared names; a forged name can only put a reply where its sender cannot read it)."""
    return user if USER_NAME.fullmatch(user) else ""


def decode_request(data: bytes) -> AnyRequest:
    try:
        return _request_decoder.decode(data)
    except (msgspec.ValidationError, msgspec.DecodeError) as err:
        raise CorruptEntry(f"bad request: {err}") from err


def decode_reply(data: bytes) -> Reply:
    try:
        return _reply_decoder.decode(data)
    except (msgspec.ValidationError, msgspec.DecodeError) as err:
        raise CorruptEntry(f"bad reply: {err}") from err
