"""`jobjournal manager`, `jobjournal worker` and `jobjournal executor`: the long-running processes."""

from __future__ import annotations

import logging
import signal
import threading
import time

import click
import msgspec

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
@click.option("--exec", "exec_backend", type=click.Choice(["sim", "process", "rq"]),
              help="Exec backend (default: settings): sim, or process (executors run the commands; rq: its old name).")
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
    queues = app.queue_redis if settings.exec_backend != "sim" else None  # the sim backend uses no queue
    Manager(patient_redis(app, stop), settings, queues=queues).run(stop)


@click.command()
@click.option("--queue", "queues", multiple=True, type=click.Choice(["ingest", "exec"]), hidden=True,
              help="The queue to serve: ingest, the only one (the option stays for older scripts).")
@click.option("--burst", is_flag=True, help="Stop when the ingest queue is empty.")
@click.option("-v", "--verbose", is_flag=True, help="Log debug messages too.")
@pass_app
def worker(app: App, queues, burst, verbose) -> None:
    """Run an rq worker of the ingest queue: it validates submissions and gives them ids."""
    import redis as redis_lib

    if "exec" in queues:
        raise click.UsageError("there is no exec queue any more: `jobjournal executor` runs the jobs' commands")

    from jobjournal.common import tasks
    from jobjournal.manager.rq_worker import LeanWorker

    _setup_logging(verbose)
    patient_redis(app, threading.Event())
    while True:
        try:
            LeanWorker([tasks.ingest_queue(app.queue_redis)], connection=app.queue_redis, settings=app.settings).work(
                burst=burst, logging_level="DEBUG" if verbose else "WARNING", with_scheduler=False
            )
            return
        except redis_lib.RedisError as err:  # unreachable, out of memory, loading, read-only, ...
            if burst:
                raise
            logging.getLogger("jobjournal.worker").warning("Redis error (%s); starting again in 1s", err)
            time.sleep(1.0)


@click.command()
@click.option("--slots", type=click.IntRange(1), help="Jobs run at once (default: JOBJOURNAL_EXEC_SLOTS, else "
              "the pool's cores).")
@click.option("-v", "--verbose", is_flag=True, help="Log debug messages too.")
@pass_app
def executor(app: App, slots, verbose) -> None:
    """Run jobs' commands (the process exec backend), several at once, each as a child process."""
    from jobjournal.manager.executor import Executor

    _setup_logging(verbose)
    stop = _stop_on_signals()
    settings = app.settings if slots is None else msgspec.structs.replace(app.settings, exec_slots=slots)
    Executor(patient_redis(app, stop), app.queue_redis, settings).run(stop)


COMMANDS = [manager, worker, executor]
