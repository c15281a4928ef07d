"""`jobjournal status` (who is up, who leads, how far behind) and `jobjournal resources` (the
leading manager's nodes and cores, free and allocated, like `flux resource list`)."""

from __future__ import annotations

import json
import socket
import time

import click

from jobjournal.common.connection import connect
from jobjournal.context import App, pass_app
from jobjournal.system import leases_held_on, process_of, published_resources, system_status


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@pass_app
def status(app: App, as_json) -> None:
    """Who is up and who leads: the manager, the listers (and their partitions), how far the view
    is behind the journal, the inbox, rq's queues and workers, and the executors."""
    report = system_status(app.redis, app.queue_redis, app.settings, time.time())
    if as_json:
        click.echo(json.dumps(report))
        return
    manager = report["manager"] or "none: requests wait in the inbox (start `jobjournal manager`)"
    click.echo(f"{'manager':<9} {manager}")
    listers = report["listers"]
    click.echo(f"{'listers':<9} {len(listers)} live" + "".join(
        f"\n{'':<9} {name}: partitions {parts or '-'}" for name, parts in listers.items()))
    click.echo(f"{'view':<9} {_view_state(report['view'])}")
    click.echo(f"{'inbox':<9} {report['inbox']} entries")
    queues = ", ".join(f"{name} {count} waiting" for name, count in report["queues"].items())
    click.echo(f"{'queues':<9} {queues}")
    click.echo(f"{'workers':<9} {len(report['workers'])}" + "".join(
        f"\n{'':<9} {name}: {state}" for name, state in report["workers"].items()))
    executors = report["executors"]
    click.echo(f"{'executors':<9} {len(executors)}" + ("" if executors else ": jobs wait in SCHED (start "
                                                          "`jobjournal executor`)") + "".join(
        f"\n{'':<9} {name}: {info['running']} of {info['slots']} slots busy" for name, info in executors.items()))


def _view_state(view: dict) -> str:
    if view["fatal"] or view["warnings"]:
        return view["fatal"] or "; ".join(view["warnings"])
    return f"{view['behind_events']} events behind" if view["behind_events"] else "caught up"


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@pass_app
def resources(app: App, as_json) -> None:
    """The leading manager's nodes and cores: free and allocated (like `flux resource list`)."""
    published = published_resources(app.redis)
    if published is None:
        raise click.ClickException("no manager has published its resources: is `jobjournal manager` running?")
    rows = published["rows"]
    if published["stale"]:
        click.echo("warning: published by a manager that no longer leads: this may be out of date", err=True)
    if as_json:
        click.echo(json.dumps(published))
        return
    click.echo(f"{'STATE':>10} {'NNODES':>7} {'NCORES':>7} NODELIST")
    for row in rows:
        click.echo(f"{row['state']:>10} {row['nnodes']:>7} {row['ncores']:>7} {row['nodelist']}")


@click.command()
@click.argument("role", type=click.Choice(["manager", "lister"]))
@pass_app
def ready(app: App, role) -> None:
    """A readiness probe: exit 0 when a process on this host holds ROLE's lease (the manager's; for
    a lister, at least one partition's), else 1, with one line saying who holds it."""
    host = socket.gethostname()
    redis = connect(app.settings, start=False)  # a probe never starts the embedded Redis
    try:
        here, elsewhere = leases_held_on(redis, role, host)
    finally:
        redis.close()
    what = "the manager lease" if role == "manager" else "lister leases"
    if here:
        click.echo(f"ready: {_processes(here)} on this host holds {what}")
        return
    held = f"held by {_processes(elsewhere)}" if elsewhere else "held by none"
    click.echo(f"not ready: no process on {host} holds {what} ({held})")
    raise SystemExit(1)


def _processes(tokens: list[str]) -> str:
    """host:pid of each lease token, once each."""
    return ", ".join(sorted({process_of(token) for token in tokens}))


COMMANDS = [status, resources, ready]
