"""`jobjournal lister`, `jobjournal jobs`, `jobjournal job ID`, `jobjournal attrs`."""

from __future__ import annotations

import json
import os
import time

import click

from jobjournal import jobs_format
from jobjournal.cli_services import (
    _setup_logging,
    _stop_on_signals,
    collect_garbage_seldom,
    metrics_options,
    patient_redis,
    serve_metrics_if_asked,
    with_metrics,
)
from jobjournal.common.layout import Layout, read_layout
from jobjournal.context import DURATION, App, pass_app, userid_of
from jobjournal.lister import filters
from jobjournal.lister import query as q
from jobjournal.lister.freshness import freshness


@click.command()
@click.option("-v", "--verbose", is_flag=True, help="Log debug messages too.")
@metrics_options
@pass_app
def lister(app: App, verbose, metrics_port, metrics_host) -> None:
    """Run a lister worker (several divide the partitions; on a store of one partition, one applies
    and the others stand by). With --metrics-port it serves its own metrics."""
    from jobjournal.lister.worker import ListerWorker
    from jobjournal.metrics.process import ListerCollector

    _setup_logging(verbose)
    settings = with_metrics(app.settings, metrics_port, metrics_host)
    stop = _stop_on_signals()
    worker = ListerWorker(patient_redis(app, stop), settings)
    serve_metrics_if_asked(settings, ListerCollector(worker))
    collect_garbage_seldom()
    worker.run(stop)


def _since(text: str, now: float) -> float:
    try:
        return filters.since(text, now)
    except filters.FilterError as err:
        raise click.BadParameter(str(err), param_hint=err.option) from err


@click.command()
@click.option("-a", "all_states", is_flag=True, help="Include inactive jobs.")
@click.option("-A", "all_users", is_flag=True, help="Jobs of every user.")
@click.option("-u", "--user", help="Jobs of USER (name, uid, or 'all').")
@click.option("-f", "--filter", "wanted", help="STATES|RESULTS to show, e.g. 'pending,failed'.")
@click.option("--since", help="Jobs active since WHEN: pending, running, or inactive after WHEN (implies -a "
              "without -f). WHEN: a time, an ISO date, or a duration ago ('-1h', '30m').")
@click.option("--name", help="Only jobs with this name.")
@click.option("--queue", help="Only jobs in this queue.")
@click.option("--constraint", help="A JSON constraint, e.g. '{\"or\":[{\"name\":[\"a\"]},{\"queue\":[\"b\"]}]}'.")
@click.option("-c", "--count", default=0, type=click.IntRange(0), help="At most N jobs (0: all).")
@click.option("-o", "--format", "fmt", default="default",
              help=f"A template like '{{id}} {{state}}', or {'/'.join(jobs_format.FORMATS)}; 'help' lists the fields.")
@click.option("-n", "--no-header", is_flag=True, help="Leave out the header line.")
@click.option("--json", "as_json", flag_value="lines", default=None,
              help="Print JSON, one job per line.")
@click.option("--json-document", "as_json", flag_value="document", help="Print one JSON document {\"jobs\": [...]}.")
@click.option("--stats", "show_stats", is_flag=True, help="Print job counts instead of jobs.")
@click.option("--timeout", default="30s", type=DURATION, show_default=True,
              help="How long to wait for a view that is still initializing (RFC 23 duration).")
@click.option("-w", "--watch", is_flag=True,
              help="Follow the journal and show the listing again as jobs change, until Ctrl-C: on a terminal "
                   "redrawn in place (as many jobs as fit), otherwise a new table printed at each change.")
@pass_app
def jobs(app: App, all_states, all_users, user, wanted, since, name, queue, constraint, count, fmt, no_header,
         as_json, show_stats, timeout, watch) -> None:
    """List jobs: by default your own pending and running ones."""
    if fmt == "help":
        click.echo(jobs_format.help_text(q.list_attrs()))
        return
    if watch and (as_json or show_stats):
        raise click.UsageError("--watch shows a table: not with --json, --json-document or --stats")
    template = _format(fmt)
    query = None if show_stats else _list_query(app, all_states, all_users, user, wanted, since, name, queue,
                                                constraint, count)
    layout = trusted_layout(app)
    if watch:
        _watch(app, layout, query, template, timeout, no_header)
        return
    from jobjournal.progress import waiting_for_view

    with waiting_for_view(app.redis, layout):
        if show_stats:
            _print_stats(q.stats(app.redis, timeout=timeout, layout=layout), as_json)
            return
        rows = q.list_jobs(app.redis, query, timeout=timeout, layout=layout)
    if as_json == "document":
        click.echo(json.dumps({"jobs": rows}))
        return
    if as_json:
        for row in rows:
            click.echo(json.dumps(row))
        return
    if not no_header:
        click.echo(jobs_format.header(template))
    now = time.time()
    for row in rows:
        click.echo(jobs_format.format_row(template, row, now))


def _list_query(app: App, all_states, all_users, user, wanted, since, name, queue, constraint, count) -> q.ListQuery:
    """The query the filters ask for (by default: the caller's pending and running jobs)."""
    states, results = filters.states_and_results(wanted) if wanted else ([], [])
    if not wanted and not (all_states or since):
        states = ["pending", "running"]
    return q.ListQuery(
        max_entries=count,
        attrs=["all"],
        userid=None if all_users else (userid_of(user) if user else os.getuid()),
        states=states,
        results=results,
        name=name,
        queue=queue,
        since=_since(since, time.time()) if since else 0.0,
        constraint=_constraint(constraint),
        max_work=app.settings.query_max_work,
    )


def _watch(app: App, layout: Layout, query: q.ListQuery, template: str, timeout: float, no_header: bool) -> None:
    from jobjournal import watch
    from jobjournal.progress import waiting_for_view

    with waiting_for_view(app.redis, layout):  # the first listing waits for a first build
        q.current_generations(app.redis, layout.partitions, timeout)
    spec = watch.WatchSpec(layout=layout, query=query, template=template, timeout=timeout, column_titles=not no_header)
    watch.watch(app.redis, spec)


def _format(fmt: str) -> str:
    try:
        return jobs_format.resolve_format(fmt, q.sample_row())
    except jobs_format.FormatError as err:
        raise click.BadParameter(str(err), param_hint="-o") from err


def trusted_layout(app: App) -> Layout:
    """The store's layout, once the view is known to be worth reading: an error at once when no
    view can come (none, and no lister to build it); a warning on stderr when the answer may be
    out of date (no lister applies it, or it lags the journal)."""
    layout = read_layout(app.redis)
    health = freshness(app.redis, layout, time.time(), app.settings.lease_ttl)
    if (fatal := health.fatal()) is not None:
        raise click.ClickException(fatal)
    for warning in health.warnings():
        click.echo(f"warning: {warning}", err=True)
    return layout


def _constraint(text: str | None):
    try:
        return filters.constraint(text)
    except filters.FilterError as err:
        raise click.BadParameter(str(err), param_hint=err.option) from err


def _print_stats(stats: dict, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(stats))
        return
    click.echo(
        f"{stats['pending']} pending, {stats['running']} running, {stats['inactive']} inactive "
        f"({stats['successful']} completed, {stats['failed']} failed, {stats['canceled']} canceled, "
        f"{stats['timeout']} timeout); {stats['inactive_purged']} purged"
    )
    states = stats["states"]
    click.echo("  ".join(f"{name} {value}" for name, value in states.items()))
    if stats["queues"]:
        click.echo(f"{'QUEUE':<12} {'PENDING':>8} {'RUNNING':>8} {'INACTIVE':>9} {'FAILED':>7}")
        for queue, block in stats["queues"].items():
            click.echo(
                f"{queue:<12} {block['pending']:>8} {block['running']:>8} {block['inactive']:>9} {block['failed']:>7}"
            )


@click.command()
def attrs() -> None:
    """List the attributes a job query can return."""
    for name in q.list_attrs():
        click.echo(name)


COMMANDS = [lister, jobs, attrs]
