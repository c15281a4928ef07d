"""`jobjournal manager`, `jobjournal worker` and `jobjournal executor`: the long-running processes."""

from __future__ import annotations

import gc
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


def metrics_options(command):
    """--metrics-port and --metrics-host, over the settings of the same names."""
    command = click.option("--metrics-host", help="Address to serve metrics on (default: JOBJOURNAL_METRICS_HOST, "
                           "else 127.0.0.1).")(command)
    return click.option("--metrics-port", type=click.IntRange(0, 65535), help="Serve Prometheus metrics on this "
                        "port at /metrics (default: JOBJOURNAL_METRICS_PORT; 0: none).")(command)


def with_metrics(settings, metrics_port, metrics_host):
    """The settings with the metrics options applied."""
    overrides = {name: value for name, value in (("metrics_port", metrics_port), ("metrics_host", metrics_host))
                 if value is not None}
    return msgspec.structs.replace(settings, **overrides)


def serve_metrics_if_asked(settings, *collectors) -> None:
    if not settings.metrics_port:
        return
    from jobjournal.metrics.serve import serve_metrics

    try:
        serve_metrics(settings.metrics_port, settings.metrics_host, *collectors)
    except OSError as err:
        raise click.ClickException(f"cannot serve metrics on {settings.metrics_host}:{settings.metrics_port}: "
                                   f"{err.strerror or err}") from err


def _stop_on_signals() -> threading.Event:
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    return stop


GC_THRESHOLDS = (50_000, 20, 100)
"""The cyclic collector's thresholds for a long-running service (Python's are 700, 10, 10)."""


def collect_garbage_seldom() -> None:
    """A service holds tens of thousands of live jobs, and their records are freed by reference
    counts, not by the cyclic collector: its full passes over all of them, at Python's thresholds,
    took about a tenth of the manager's CPU in a 30K-job burst. What the process holds when it starts
    (modules, settings) is frozen out of those passes, and they come far less often."""
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


@click.command()
@click.option("--exec", "exec_backend", type=click.Choice(["sim", "process", "rq"]),
              help="Exec backend (default: settings): sim, or process (executors run the commands; rq: its old name).")
@click.option("--nodes", type=click.IntRange(1), help="Nodes in the resource pool.")
@click.option("--cores-per-node", type=click.IntRange(1), help="Cores on each node.")
@click.option("-v", "--verbose", is_flag=True, help="Log debug messages too.")
@metrics_options
@pass_app
def manager(app: App, exec_backend, nodes, cores_per_node, verbose, metrics_port, metrics_host) -> None:
    """Run the job manager (a second one waits as a standby and takes over). With --metrics-port it
    serves its own metrics and the store's (those of `jobjournal web`'s /metrics)."""
    from jobjournal.manager.manager import Manager
    from jobjournal.metrics.process import ManagerCollector
    from jobjournal.metrics.store import StoreCollector

    _setup_logging(verbose)
    overrides = {
        name: value
        for name, value in (("exec_backend", exec_backend), ("nodes", nodes), ("cores_per_node", cores_per_node))
        if value is not None
    }
    settings = with_metrics(msgspec.structs.replace(app.settings, **overrides), metrics_port, metrics_host)
    stop = _stop_on_signals()
    queues = app.queue_redis if settings.exec_backend != "sim" else None  # the sim backend uses no queue
    the_manager = Manager(patient_redis(app, stop), settings, queues=queues)
    serve_metrics_if_asked(settings, ManagerCollector(the_manager),
                           StoreCollector(app.redis, None, 2.0, app.queue_redis))
    collect_garbage_seldom()
    the_manager.run(stop)


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
    collect_garbage_seldom()
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
    """Run jobs' commands (the process exec backend), several at once, each as a child process:
    as this executor's user, or with JOBJOURNAL_EXEC_RUN_AS=owner (the executor then runs as root)
    as each job's owner."""
    from jobjournal.manager.executor import Executor, check_run_as

    settings = app.settings if slots is None else msgspec.structs.replace(app.settings, exec_slots=slots)
    check_run_as(settings)  # before waiting for Redis: a setting it cannot honour is said at once
    _setup_logging(verbose)
    stop = _stop_on_signals()
    collect_garbage_seldom()
    Executor(patient_redis(app, stop), app.queue_redis, settings).run(stop)


COMMANDS = [manager, worker, executor]
