"""`jobjournal status` (who is up, who leads, how far behind) and `jobjournal resources` (the
leading manager's nodes and cores, free and allocated, like `flux resource list`)."""

from __future__ import annotations

import json
import time

import click

from jobjournal.common import keys, tasks
from jobjournal.common.layout import read_layout
from jobjournal.common.packed import reads
from jobjournal.common.resources import encode_idset, hostlist, idset_ranges
from jobjournal.context import App, pass_app
from jobjournal.lister.freshness import freshness


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@pass_app
def status(app: App, as_json) -> None:
    """Who is up and who leads: the manager, the listers (and their partitions), how far the view
    is behind the journal, the inbox, rq's queues and workers, and the executors."""
    report = _status(app, time.time())
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


def _status(app: App, now: float) -> dict:
    redis = app.redis
    layout = read_layout(redis)
    [manager, inbox_length] = reads(redis, [("GET", keys.manager_lease()), ("XLEN", keys.manager_inbox())])
    members = redis.zrangebyscore(keys.lister_members(), now - app.settings.lease_ttl, "+inf")
    holders = reads(redis, [("GET", part.lister_lease()) for part in layout.partitions])
    by_holder: dict[str, list[int]] = {_process(member): [] for member in members}
    for part, holder in zip(layout.partitions, holders, strict=True):
        if holder is not None:  # a worker's leases and its member name share its host:pid
            by_holder.setdefault(_process(holder), []).append(part.index)
    health = freshness(redis, layout, now, app.settings.lease_ttl)
    return {
        "manager": manager.decode() if manager else None,
        "listers": {name: encode_idset(parts) for name, parts in sorted(by_holder.items())},
        "view": {"fatal": health.fatal(), "warnings": health.warnings(), "behind_events": health.behind_events,
                 "behind_s": round(health.behind_s, 3)},
        "inbox": inbox_length,
        **_rq(app),
    }


def _process(token: bytes) -> str:
    """host:pid of a lease token or worker name (host:pid:random, common/lease.py)."""
    return token.decode().rsplit(":", 1)[0]


def _rq(app: App) -> dict:
    from rq import Worker  # rq costs ~30 ms to import: only for the commands that need it

    from jobjournal.manager import exec_dispatch

    connection = app.queue_redis
    workers = {worker.name: worker.get_state() for worker in Worker.all(connection=connection)}
    executors = exec_dispatch.live_executors(connection)
    return {
        "queues": {"ingest": tasks.ingest_queue(connection).count,
                   "exec": connection.xlen(keys.exec_dispatch())},
        "workers": dict(sorted(workers.items())),
        "executors": {name: {"slots": info.slots, "running": info.running}
                      for name, info in sorted(executors.items())},
    }


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@pass_app
def resources(app: App, as_json) -> None:
    """The leading manager's nodes and cores: free and allocated (like `flux resource list`)."""
    pool = app.redis.hgetall(keys.manager_resources())
    if not pool:
        raise click.ClickException("no manager has published its resources: is `jobjournal manager` running?")
    rows, stale = _resource_rows(pool), pool[b"token"] != app.redis.get(keys.manager_lease())
    if stale:
        click.echo("warning: published by a manager that no longer leads: this may be out of date", err=True)
    if as_json:
        click.echo(json.dumps({"rows": rows, "exec_backend": pool[b"exec_backend"].decode(), "stale": stale}))
        return
    click.echo(f"{'STATE':>10} {'NNODES':>7} {'NCORES':>7} NODELIST")
    for row in rows:
        click.echo(f"{row['state']:>10} {row['nnodes']:>7} {row['ncores']:>7} {row['nodelist']}")


def _resource_rows(pool: dict) -> list[dict]:
    nodes, per_node = int(pool[b"nodes"]), int(pool[b"cores_per_node"])
    whole = [rank for low, high in idset_ranges(pool[b"free"].decode()) for rank in range(low, high + 1)]
    partial = {int(rank): int(cores) for rank, _, cores in
               (item.partition(":") for item in pool[b"partial"].decode().split(",") if item)}
    free_ranks = sorted([*whole, *partial])
    free_cores = len(whole) * per_node + sum(partial.values())
    used_ranks = sorted(set(range(nodes)) - set(whole))
    return [
        {"state": "free", "nnodes": len(free_ranks), "ncores": free_cores, "nodelist": _names(free_ranks)},
        {"state": "allocated", "nnodes": len(used_ranks), "ncores": nodes * per_node - free_cores,
         "nodelist": _names(used_ranks)},
    ]


def _names(ranks: list[int]) -> str:
    return hostlist([f"node{rank}" for rank in ranks]) if ranks else ""


COMMANDS = [status, resources]
