"""Actions in the web view: cancel a job, set its urgency. Off unless `jobjournal web --actions`.

Each action is authenticated as the person's own Redis ACL user (`jobjournal user add NAME --uid
UID`; jobjournal/web/login.py). The uid it acts as is the one mapped to that user; the manager's
owner rules apply as for the CLI. A browser's POST from another origin is refused (a page elsewhere
cannot act with the credentials a browser keeps). Nothing of the body is read before the request
is known to be allowed, from this site, with credentials, and not too big.

`POST /api/v1/jobs/ID/cancel` (JSON body, optional: {"note": TEXT}) and `POST /api/v1/jobs/ID/urgency`
({"urgency": 0-31}) answer JSON; the job page's forms post to /jobs/ID/cancel and /jobs/ID/urgency
and come back to the page (303).
"""

from __future__ import annotations

import json
from urllib.parse import parse_qs

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from jobjournal.common import keys
from jobjournal.common.errors import RequestFailed
from jobjournal.common.ids import InvalidJobId, f58, parse_job_id
from jobjournal.manager import client
from jobjournal.web.login import ActionRefused, credentials

ACTION_TIMEOUT = 10.0
"""Seconds an action waits for the manager's reply."""
MAX_BODY = 4096


# -- routes
async def cancel_api(request: Request) -> Response:
    checked = _checked(request)
    body = await _json_body(request)
    return await _answer_json(request, checked, lambda login, uid, job_id: _cancel(login, uid, job_id,
                                                                                   body.get("note", "")))


async def urgency_api(request: Request) -> Response:
    checked = _checked(request)
    urgency = (await _json_body(request)).get("urgency")
    return await _answer_json(request, checked, lambda login, uid, job_id: _set_urgency(login, uid, job_id, urgency))


async def cancel_form(request: Request) -> Response:
    checked = _checked(request)
    note = (await _form_body(request)).get("note", "")
    return await _answer_form(request, checked, lambda login, uid, job_id: _cancel(login, uid, job_id, note))


async def urgency_form(request: Request) -> Response:
    checked = _checked(request)
    urgency = _as_int((await _form_body(request)).get("urgency"))
    return await _answer_form(request, checked, lambda login, uid, job_id: _set_urgency(login, uid, job_id,
                                                                                        urgency))


def refused(request: Request, err: ActionRefused) -> Response:
    if request.url.path.startswith("/api/"):
        return JSONResponse({"error": str(err)}, status_code=err.status, headers=err.headers)
    return request.app.state.templates.TemplateResponse(
        request, "error.html", {"status": err.status, "message": str(err)}, status_code=err.status,
        headers=err.headers)


# -- what each action does, as the person logged in
def _cancel(login, uid: int, job_id: int, note) -> str:
    if not isinstance(note, str) or len(note) > 1024:
        raise ActionRefused(400, "note must be a text of at most 1024 characters")
    errors = client.cancel(login.store, [job_id], note=note, userid=uid, timeout=ACTION_TIMEOUT, queues=login.queues)
    _refuse_if(errors.get(job_id))
    return f"job {f58(job_id)} canceled"


def _set_urgency(login, uid: int, job_id: int, urgency) -> str:
    if not isinstance(urgency, int) or isinstance(urgency, bool) or not 0 <= urgency <= 31:
        raise ActionRefused(400, "urgency must be a whole number from 0 to 31")
    errors = client.set_urgency(login.store, job_id, urgency, userid=uid, timeout=ACTION_TIMEOUT, queues=login.queues)
    _refuse_if(errors.get(job_id))
    return f"job {f58(job_id)}: urgency {urgency}"


def _refuse_if(error: str | None) -> None:
    if error:
        raise ActionRefused(403 if error.startswith("permission denied") else 409, error)


# -- the edge
async def _answer_json(request: Request, checked, act) -> Response:
    said = await run_in_threadpool(_as_person, request.app.state, *checked, act)
    return JSONResponse({"version": 1, "done": said})


async def _answer_form(request: Request, checked, act) -> Response:
    await run_in_threadpool(_as_person, request.app.state, *checked, act)
    return RedirectResponse(f"/jobs/{request.path_params['job_id']}", status_code=303)


def _checked(request: Request) -> tuple[int, str, str]:
    """(job id, user, password), once actions are on, the request comes from this site (or from
    no browser), carries credentials and is not too big."""
    if not request.app.state.actions:
        raise ActionRefused(403, "this web view is read-only (start it with `jobjournal web --actions`)")
    origin = request.headers.get("origin")
    if origin is not None and origin != f"{request.url.scheme}://{request.url.netloc}":
        raise ActionRefused(403, f"refused: a request from another site ({origin})")
    try:
        job_id = parse_job_id(request.path_params["job_id"])
    except InvalidJobId as err:
        raise ActionRefused(400, str(err)) from err
    user, password = credentials(request)
    declared = request.headers.get("content-length", "0")
    if not declared.isdigit() or int(declared) > MAX_BODY:
        raise ActionRefused(413, f"the body must be at most {MAX_BODY} bytes")
    return job_id, user, password


def _as_person(state, job_id: int, user: str, password: str, act) -> str:
    with state.logins.logged_in(state.settings, user, password) as login:
        uid = state.redis.hget(keys.users(), user)  # the server's own client: a person may not read jj:users
        if uid is None:
            raise ActionRefused(403, f"user {user} has no uid: `jobjournal user add {user} --uid UID` maps it")
        try:
            return act(login, int(uid), job_id)
        except RequestFailed as err:
            raise ActionRefused(409, str(err)) from err


async def _json_body(request: Request) -> dict:
    raw = await _body(request)
    try:
        body = json.loads(raw) if raw.strip() else {}
    except ValueError as err:
        raise ActionRefused(400, f"the body is not JSON: {err}") from err
    if not isinstance(body, dict):
        raise ActionRefused(400, "the body must be a JSON object")
    return body


async def _form_body(request: Request) -> dict:
    try:
        fields = parse_qs((await _body(request)).decode(), max_num_fields=8, strict_parsing=False)
    except (UnicodeDecodeError, ValueError) as err:
        raise ActionRefused(400, f"the form does not decode: {err}") from err
    return {name: values[-1] for name, values in fields.items()}


async def _body(request: Request) -> bytes:
    """The body, read no further than MAX_BODY (whatever Content-Length said)."""
    raw = bytearray()
    async for piece in request.stream():
        raw += piece
        if len(raw) > MAX_BODY:
            raise ActionRefused(413, f"the body must be at most {MAX_BODY} bytes")
    return bytes(raw)


def _as_int(text) -> int | None:
    try:
        return int(text)
    except (TypeError, ValueError):
        return None
