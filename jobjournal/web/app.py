"""The web application (Starlette): pages, the JSON API under /api/v1/, and /metrics (the
store's metrics, jobjournal/metrics/store.py, and how long this server's queries took).

Read-only unless made with actions=True (jobjournal/web/actions.py: cancel and urgency, each
authenticated as the person's Redis ACL user). Every answer comes from Redis at once (the
lister's view, the job's keys): no state here but the client, the layout and the settings.
Endpoints are plain functions (Starlette runs them in its thread pool, as redis-py blocks). Bad
input gets a 4xx with a one-line message (JSON `{"error": ...}` under /api/, a page otherwise); a
view still being built, 503 with its progress.
"""

from __future__ import annotations

import time
from importlib import resources
from urllib.parse import urlencode

import redis as redis_lib
from prometheus_client import Histogram, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.templating import Jinja2Templates

from jobjournal.common.errors import NoSuchJob
from jobjournal.common.ids import InvalidJobId, f58, parse_job_id
from jobjournal.common.layout import read_layout
from jobjournal.common.settings import Settings
from jobjournal.lister import query as q
from jobjournal.lister.errors import QueryError, ViewNotReady
from jobjournal.lister.progress import partition_progress
from jobjournal.metrics.store import store_registry
from jobjournal.system import consumer_lag, finished_per_interval, published_resources, system_status
from jobjournal.web import actions as act
from jobjournal.web.fanout import JournalFanout
from jobjournal.web.listing import DEFAULT_LIMIT, list_query, next_cursor
from jobjournal.web.live import job_stream, journal_stream
from jobjournal.web.login import LoginGuard
from jobjournal.web.views import job_detail

API_VERSION = 1
QUERY_TIMEOUT = 2.0
"""Seconds a request waits for a view still being built before it answers 503."""
LATENCY_BUCKETS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0)


def make_app(redis, settings: Settings, queues=None, actions: bool = False) -> Starlette:
    """The app on the store `redis` (and rq's Redis `queues`, when it is another server); with
    `actions`, people may cancel jobs and set their urgency, logged in as their ACL user."""
    templates = Jinja2Templates(directory=str(resources.files("jobjournal.web").joinpath("templates")))
    templates.env.filters["f58"] = f58
    app = Starlette(
        routes=[
            Route("/", job_list_page),
            Route("/jobs/{job_id}", job_page),
            Route("/summary", summary_page),
            Route(f"/api/v{API_VERSION}/summary", summary_api),
            Route(f"/api/v{API_VERSION}/jobs", jobs_api),
            Route(f"/api/v{API_VERSION}/jobs/{{job_id}}", job_api),
            Route(f"/api/v{API_VERSION}/stats", stats_api),
            Route(f"/api/v{API_VERSION}/events", journal_stream),
            Route(f"/api/v{API_VERSION}/jobs/{{job_id}}/events", job_events),
            Route("/metrics", metrics),
            Route(f"/api/v{API_VERSION}/jobs/{{job_id}}/cancel", act.cancel_api, methods=["POST"]),
            Route(f"/api/v{API_VERSION}/jobs/{{job_id}}/urgency", act.urgency_api, methods=["POST"]),
            Route("/jobs/{job_id}/cancel", act.cancel_form, methods=["POST"]),
            Route("/jobs/{job_id}/urgency", act.urgency_form, methods=["POST"]),
        ],
        exception_handlers={QueryError: _refused, NoSuchJob: _not_found, ViewNotReady: _not_ready,
                            act.ActionRefused: act.refused, redis_lib.RedisError: _redis_failed},
    )
    app.state.actions, app.state.logins = actions, LoginGuard()
    app.state.redis, app.state.settings, app.state.templates = redis, settings, templates
    app.state.queues = redis if queues is None else queues
    app.state.layout = read_layout(redis)
    app.state.fanout = JournalFanout(redis, app.state.layout)
    app.state.registry = store_registry(redis, app.state.layout, QUERY_TIMEOUT, app.state.queues)
    app.state.latency = Histogram("jobjournal_web_query_seconds", "How long this server's reads of the store took, "
                                  "by kind (list, stats, job, summary)", ["query"], registry=app.state.registry,
                                  buckets=LATENCY_BUCKETS)
    return app


def _timed(request: Request, query: str):
    """Time a read of the store into /metrics' latency histogram."""
    return request.app.state.latency.labels(query).time()


# -- the JSON API
def jobs_api(request: Request) -> JSONResponse:
    rows, after = _page(request)
    return JSONResponse({"version": API_VERSION, "jobs": rows, "count": len(rows), "next": next_cursor(after)})


def job_api(request: Request) -> JSONResponse:
    return JSONResponse({"version": API_VERSION, **_job(request)})


async def job_events(request: Request) -> Response:
    return await job_stream(request, _job_id(request))


def stats_api(request: Request) -> JSONResponse:
    return JSONResponse({"version": API_VERSION, **_stats(request)})


def summary_api(request: Request) -> JSONResponse:
    return JSONResponse({"version": API_VERSION, **_summary(request)})


def metrics(request: Request) -> Response:
    return Response(generate_latest(request.app.state.registry), media_type="text/plain; version=0.0.4; charset=utf-8")


# -- pages
def job_list_page(request: Request) -> Response:
    state = request.app.state
    stats = _stats(request)
    rows, after = _page(request)
    params = dict(request.query_params)
    following = urlencode({**params, "after": next_cursor(after)}) if after else None
    context = {"jobs": rows, "stats": stats, "params": params, "limit": DEFAULT_LIMIT, "next": following,
               "builds": _builds(request)}
    return state.templates.TemplateResponse(request, "jobs.html", context)


def job_page(request: Request) -> Response:
    context = {**_job(request), "actions": request.app.state.actions}
    return request.app.state.templates.TemplateResponse(request, "job.html", context)


def summary_page(request: Request) -> Response:
    summary = _summary(request)
    most = max([1, *(point["jobs"] for point in summary["throughput"])])
    return request.app.state.templates.TemplateResponse(request, "summary.html", {**summary, "most": most})


# -- shared
def _summary(request: Request) -> dict:
    state, now = request.app.state, time.time()
    stats = _stats(request)
    with _timed(request, "summary"):
        return {
            "stats": stats,
            "status": system_status(state.redis, state.queues, state.settings, now),
            "resources": published_resources(state.redis),
            "consumers": consumer_lag(state.redis, state.layout),
            "throughput": finished_per_interval(state.redis, state.layout, now),
            "builds": _builds(request),
        }


def _builds(request: Request) -> list[dict]:
    """The views being built now, with their progress (readers use the generation before until a
    build is done; a partition's first build makes queries wait, then answer 503 with its progress)."""
    state = request.app.state
    return [{"partition": part.index, "loaded": part.building, "jobs": part.jobs}
            for part in partition_progress(state.redis, state.layout) if part.building is not None]


def _stats(request: Request) -> dict:
    state = request.app.state
    with _timed(request, "stats"):
        return q.stats(state.redis, timeout=QUERY_TIMEOUT, layout=state.layout)


def _job(request: Request) -> dict:
    state, job_id = request.app.state, _job_id(request)
    with _timed(request, "job"):
        return job_detail(state.redis, state.layout, job_id, QUERY_TIMEOUT)


def _page(request: Request) -> tuple[list[dict], tuple | None]:
    state = request.app.state
    query = list_query(request.query_params, state.settings.query_max_work)
    with _timed(request, "list"):
        rows, after = q.list_page(state.redis, query, timeout=QUERY_TIMEOUT, layout=state.layout)
    for row in rows:  # an id is up to 2^63: beyond a JavaScript number's exact integers
        row["f58"] = f58(row["id"])
    return rows, after


def _job_id(request: Request) -> int:
    try:
        return parse_job_id(request.path_params["job_id"])
    except InvalidJobId as err:
        raise QueryError(str(err)) from err


def _error(request: Request, status: int, message: str) -> Response:
    if request.url.path.startswith("/api/") or request.url.path == "/metrics":
        return JSONResponse({"error": message}, status_code=status)
    return request.app.state.templates.TemplateResponse(
        request, "error.html", {"status": status, "message": message}, status_code=status
    )


def _refused(request: Request, err: Exception) -> Response:
    return _error(request, 400, str(err))


def _not_found(request: Request, err: Exception) -> Response:
    return _error(request, 404, str(err))


def _not_ready(request: Request, err: Exception) -> Response:
    return _error(request, 503, str(err))


def _redis_failed(request: Request, err: Exception) -> Response:
    """Redis down, restarting, out of memory, or refusing this server's user: 503, in one line."""
    return _error(request, 503, f"Redis could not answer: {err}")
