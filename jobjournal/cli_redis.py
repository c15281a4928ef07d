"""`jobjournal redis start|stop|status|cli`: the embedded Redis server."""

from __future__ import annotations

import os
from pathlib import Path

import click

from jobjournal.common.connection import redis_url
from jobjournal.common.redis_cluster import SCHEME as CLUSTER_SCHEME
from jobjournal.common.redis_cluster import EmbeddedCluster
from jobjournal.common.redis_server import EmbeddedRedis, bundled_binary
from jobjournal.context import App, Group, pass_app


@click.group(cls=Group)
def redis() -> None:
    """Manage the embedded Redis server (or show the configured one)."""


def _cluster(app: App, masters: int = 3) -> EmbeddedCluster:
    return EmbeddedCluster(Path(app.settings.home) / "cluster", masters)


@redis.command()
@click.option("--cluster", "masters", type=click.IntRange(1, 16), default=None,
              help="Start a local Redis Cluster of this many masters instead (for trying scale-out).")
@pass_app
def start(app: App, masters) -> None:
    """Start the embedded Redis server (reused if it already runs), or a local cluster."""
    if masters is not None:
        url = _cluster(app, masters).start()
        click.echo(url)
        click.echo(f"use it with: export JOBJOURNAL_REDIS_URL={url} JOBJOURNAL_PARTITIONS={4 * masters}", err=True)
        return
    _only_embedded(app, "start")
    click.echo(EmbeddedRedis(app.settings.home).start())


def _only_embedded(app: App, verb: str) -> None:
    """`redis start` and `redis stop` act on the embedded server only: refuse while the settings
    name another."""
    if app.settings.redis_url:
        raise click.ClickException(
            f"JOBJOURNAL_REDIS_URL names {app.settings.redis_url}: `redis {verb}` acts only on the embedded "
            "server (unset JOBJOURNAL_REDIS_URL to use it)"
        )


@redis.command()
@click.option("--cluster", is_flag=True, help="Stop the local cluster `start --cluster` started.")
@pass_app
def stop(app: App, cluster) -> None:
    """Stop the embedded Redis server, saving its data (or the local cluster, keeping nothing)."""
    if not cluster:
        _only_embedded(app, "stop")
    stopped = _cluster(app).stop() if cluster else EmbeddedRedis(app.settings.home).stop()
    click.echo("stopped" if stopped else "not running")


@redis.command()
@pass_app
def status(app: App) -> None:
    """Say which Redis is in use and whether it answers."""
    if app.settings.redis_url:
        click.echo(f"configured: {app.settings.redis_url}")
        app.redis.ping()
        click.echo("answers: yes")
        return
    server = EmbeddedRedis(app.settings.home)
    running = server.is_running()
    click.echo(f"embedded: {server.url}\nhome: {server.home}\nrunning: {'yes' if running else 'no'}")
    if running:
        click.echo(f"pid: {server.pid()}")
    else:
        raise SystemExit(1)


@redis.command(context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
@pass_app
def cli(app: App, args: tuple[str, ...]) -> None:
    """Run the bundled redis-cli against the Redis in use, e.g. `jobjournal redis cli xlen jj:journal`."""
    url = redis_url(app.settings)
    if url.startswith(CLUSTER_SCHEME):  # redis-cli follows the cluster's redirects with -c
        host, _, port = url[len(CLUSTER_SCHEME) :].rpartition(":")
        target = ["-c", "-h", host, "-p", port]
    elif url.startswith("unix://"):
        target = ["-s", url.removeprefix("unix://")]
    else:
        target = ["-u", url]
    binary = str(bundled_binary("redis-cli"))
    os.execv(binary, [binary, *target, *args])


COMMANDS = [redis]
