"""The web view's figures: `jobjournal web` as a process of the System, asked over HTTP/1.1.

Each listing is timed over one keep-alive connection (the stdlib http.client: no client library
of ours in the way), beside the same listing done in this process with the library calls its
handler makes, timed the same way in the same run. The live-update delay is timed through the
server-sent event stream, from each journal entry's post to its arrival at the client.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import threading
import time
from urllib.parse import parse_qsl, urlsplit

from bench.figures import USERS, percentiles, timed
from bench.system import System, wait_until
from jobjournal.common import journal as jr
from jobjournal.common.jobspec import encode, make_jobspec
from jobjournal.common.keys import LEGACY
from jobjournal.common.layout import read_layout
from jobjournal.lister import query as q
from jobjournal.manager.ingest import accept_jobs
from jobjournal.web.app import QUERY_TIMEOUT
from jobjournal.web.listing import list_query

HOST = "127.0.0.1"
LISTINGS = {
    # name: (path, whether the handler also reads the counts: the HTML page shows them)
    "list_page": ("/", True),
    "json_list": ("/api/v1/jobs?limit=100", False),
    "json_failed": ("/api/v1/jobs?limit=100&state=failed", False),
}
WARMUP = 30


def web_figures(system: System, runs: int = 300) -> dict:
    """Start `jobjournal web` on a free port, take every figure, stop it."""
    port = free_port()
    system.start("web", "web", "--host", HOST, "--port", str(port))
    try:
        wait_answering(system, port, 60)
        out = {name: listing_figure(system, port, path, counts, runs) for name, (path, counts) in LISTINGS.items()}
        out["sse"] = sse_delay(system, port)
    finally:
        system.stop("web")
    return out


def free_port() -> int:
    """A port nobody listens on now (bound to port 0, then let go)."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def wait_answering(system: System, port: int, timeout: float) -> None:
    """Until the server answers 200; RuntimeError if its process ended or the deadline passed."""
    deadline = time.monotonic() + timeout
    while True:
        if system.procs["web"].poll() is not None:
            raise RuntimeError(f"jobjournal web exited; see {system.home / 'web.log'}")
        try:
            connection = http.client.HTTPConnection(HOST, port, timeout=2)
            get(connection, "/api/v1/stats")
            connection.close()
            return
        except (OSError, http.client.HTTPException, RuntimeError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def get(connection: http.client.HTTPConnection, path: str) -> bytes:
    """One GET on the kept-alive connection, its body read in full; RuntimeError unless 200."""
    connection.request("GET", path)
    response = connection.getresponse()
    body = response.read()
    if response.status != 200:
        raise RuntimeError(f"GET {path}: {response.status} {body[:200]!r}")
    if response.will_close:
        raise RuntimeError(f"GET {path}: the server closed the connection (no keep-alive)")
    return body


def listing_figure(system: System, port: int, path: str, counts: bool, runs: int) -> dict:
    """p50/p99 ms of GET `path` (request sent to body read), beside the in-process listing."""
    connection = http.client.HTTPConnection(HOST, port, timeout=10)
    try:
        timed(lambda: get(connection, path), WARMUP)
        web = percentiles(timed(lambda: get(connection, path), runs))
    finally:
        connection.close()
    call = in_process(system, path, counts)
    timed(call, WARMUP)
    local = percentiles(timed(call, runs))
    ratio = {key: round(web[key] / local[key], 2) for key in web}
    return {"path": path, "web_ms": web, "in_process_ms": local, "web_vs_in_process": ratio}


def in_process(system: System, path: str, counts: bool):
    """The handler's library calls for `path`: its parameters read into a ListQuery, `list_page`
    (and `stats`, for the HTML page), on a layout read once as the app reads it; no HTTP, no
    thread-pool hop, no JSON or template."""
    params = dict(parse_qsl(urlsplit(path).query))
    redis, layout, max_work = system.redis, read_layout(system.redis), system.settings.query_max_work

    def call():
        if counts:
            q.stats(redis, timeout=QUERY_TIMEOUT, layout=layout)
        return q.list_page(redis, list_query(params, max_work), timeout=QUERY_TIMEOUT, layout=layout)

    return call


def sse_delay(system: System, port: int, rate: int = 100, seconds: float = 5.0) -> dict:
    """Submit `rate` jobs/s for `seconds` while a client follows /api/v1/events.

    `post_to_sse_client_ms`, for every journal entry of those jobs: from the entry's post (its
    entry id's milliseconds, Redis's clock, whole ms, so a delay reads up to 1 ms long) to this
    process having read its message off the socket. It spans the server's blocking XREAD waking
    in its worker thread, the hop back to the event loop, the JSON, uvicorn's write, loopback TCP
    and http.client's chunk reading; not a browser's JavaScript or redraw.
    `submit_accept_to_sse_client_ms`, for each job's submit event: from the accept_jobs call (the
    job handed to the manager's inbox) to the same arrival, so it adds the manager's ingest.
    `missed`: entries the stream never delivered (counted against the target)."""
    received: dict[tuple[int, str], float] = {}
    ready, stop = threading.Event(), threading.Event()
    reader = threading.Thread(target=read_events, args=(port, received, ready, stop), daemon=True)
    reader.start()
    if not ready.wait(30):
        raise RuntimeError("the event stream did not start")
    start = jr.journal_head(system.redis, LEGACY)[0]
    accepted = submit_at_rate(system, rate, seconds)
    entries = wait_delivered(system, start, accepted, received)
    stop.set()
    reader.join(5)
    wait_until(system.view_caught_up, 60, "the view to catch up", 0.01)  # the next figure starts idle
    posted = [received[key] - post_ms for key, post_ms in entries.items() if key in received]
    submitted = [received[(job, "submit")] - at for job, at in accepted.items() if (job, "submit") in received]
    return {
        "jobs_per_s": rate,
        "entries": len(entries),
        "missed": len(entries) - len(posted),
        "post_to_sse_client_ms": percentiles(posted),
        "submit_accept_to_sse_client_ms": percentiles(submitted),
    }


def read_events(port: int, received: dict, ready: threading.Event, stop: threading.Event) -> None:
    """Follow the stream: the arrival (ms, wall clock) of each (job id, event name), first seen."""
    connection = http.client.HTTPConnection(HOST, port, timeout=30)
    connection.request("GET", "/api/v1/events")
    response = connection.getresponse()
    try:
        while not stop.is_set():
            line = response.readline()
            if not line:
                return
            if line.startswith(b"retry:"):  # sent once the server holds its place in the journal
                ready.set()
            elif line.startswith(b"data: "):
                now_ms = time.time() * 1000
                for event in json.loads(line[6:]).get("events", []):
                    received.setdefault((event["id"], event["name"]), now_ms)
    finally:
        connection.close()


def submit_at_rate(system: System, rate: int, seconds: float) -> dict[int, float]:
    """One job every 1/rate s (accept_jobs, straight into the manager's inbox); job id -> when (ms)."""
    spec = encode(make_jobspec(command=["web-tick"]))
    accepted: dict[int, float] = {}
    started = time.monotonic()
    for step in range(int(rate * seconds)):
        at = time.time() * 1000
        [job_id] = accept_jobs(system.redis, [spec], USERS[2])
        accepted[job_id] = at
        time.sleep(max(0.0, started + (step + 1) / rate - time.monotonic()))
    return accepted


def wait_delivered(system: System, start: str, accepted: dict, received: dict) -> dict[tuple[int, str], int]:
    """Once the jobs are inactive and the stream has had time to deliver: their journal entries
    after `start`, (job id, name) -> post time (ms)."""
    redis, jobs = system.redis, list(accepted)

    def inactive():
        pipe = redis.pipeline(transaction=False)
        for job_id in jobs:
            pipe.zscore(LEGACY.inactive_jobs(), job_id)
        return all(score is not None for score in pipe.execute())

    wait_until(inactive, 120, "the web bench's jobs to end", 0.01)
    entries: dict[tuple[int, str], int] = {}
    for entry_id, fields in redis.xrange(LEGACY.journal(), f"({start}", "+"):
        entry = jr.decode_journal_entry(entry_id, fields)
        if entry.job_id in accepted:
            entries.setdefault((entry.job_id, entry.name), int(entry.entry_id.split("-")[0]))
    with contextlib.suppress(RuntimeError):  # what is still not there counts as missed
        wait_until(lambda: all(key in received for key in entries), 10, "the stream to deliver", 0.01)
    return entries
