"""`jobjournal manager` and `jobjournal worker`: the long-running processes."""

from __future__ import annotations

import logging
import signal
import threading
import time

import click
import msgspec

from jobjournal.common import keys
from jobjournal.context import App, pass_app


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )


def patient_redis(app: App, stop: threading.Event):
    """The Redis client for a long-running process: wait (and say so) until Redis answers."""
    from jobjournal.common.errors import RedisUnavailable

    while not stop.is_set():
        try:
            return app.redis
        except RedisUnavailable as err:
            logging.getLogger("jobjournal").warning("%s; trying again in 1s", err)
            stop.wait(1.0)
    raise SystemExit(0)


def _stop_on_signals() -> threading.Event:
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    return stop


@click.command()
@click.option("--exec", "exec_backend", type=click.Choice(["sim", "rq"]), help="Exec backend (default: settings).")
@click.option("--nodes", type=click.IntRange(1), help="Nodes in the resource pool.")
@click.option("--cores-per-node", type=click.IntRange(1), help="Cores on each node.")
@click.option("-v", "--verbose", is_flag=True, help="Log debug messages too.")
@pass_app
def manager(app: App, exec_backend, nodes, cores_per_node, verbose) -> None:
    """Run the job manager (a second one waits as a standby and takes over)."""
    from jobjournal.manager.manager import Manager

    _setup_logging(verbose)
    overrides = {
        name: value
        for name, value in (("exec_backend", exec_backend), ("nodes", nodes), ("cores_per_node", cores_per_node))
        if value is not None
    }
    settings = msgspec.structs.replace(app.settings, **overrides)
    stop = _stop_on_signals()
    queues = app.queue_redis if settings.exec_backend == "rq" else None  # the sim backend uses no queue
    Manager(patient_redis(app, stop), settings, queues=queues).run(stop)


@click.command()
@click.option(
    "--queue",
    "queues",
    multiple=True,
    type=click.Choice(["ingest", "exec"]),
    help="Queues to serve (default: both).",
)
@click.option("--burst", is_flag=True, help="Stop when the queues are empty.")
@click.option("-v", "--verbose", is_flag=True, help="Log debug messages too.")
@pass_app
def worker(app: App, queues, burst, verbose) -> None:
    """Run an rq worker: ingest validates submissions, exec runs commands."""
    import redis as redis_lib
    from rq import Queue

    from jobjournal.manager.rq_worker import LeanWorker

    _setup_logging(verbose)
    names = {"ingest": keys.INGEST_QUEUE, "exec": keys.EXEC_QUEUE}
    chosen = [names[q] for q in (queues or ("ingest", "exec"))]
    patient_redis(app, threading.Event())
    while True:
        rq_queues = [Queue(name, connection=app.queue_redis) for name in chosen]
        try:
            LeanWorker(rq_queues, connection=app.queue_redis, settings=app.settings).work(
                burst=burst, logging_level="DEBUG" if verbose else "WARNING", with_scheduler=False
            )
            return
        except redis_lib.ConnectionError as err:
            if burst:
                raise
            logging.getLogger("jobjournal.worker").warning("Redis unreachable (%s); starting again in 1s", err)
            time.sleep(1.0)


COMMANDS = [manager, worker]
