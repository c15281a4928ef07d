"""`jobjournal redis start|stop|status|cli`: the embedded Redis server."""

from __future__ import annotations

import os

import click

from jobjournal.common.connection import redis_url
from jobjournal.common.redis_server import EmbeddedRedis, bundled_binary
from jobjournal.context import App, Group, pass_app


@click.group(cls=Group)
def redis() -> None:
    """Manage the embedded Redis server (or show the configured one)."""


@redis.command()
@pass_app
def start(app: App) -> None:
    """Start the embedded Redis server (reused if it already runs)."""
    if app.settings.redis_url:
        click.echo(f"using {app.settings.redis_url} (JOBJOURNAL_REDIS_URL); nothing to start")
        return
    click.echo(EmbeddedRedis(app.settings.home).start())


@redis.command()
@pass_app
def stop(app: App) -> None:
    """Stop the embedded Redis server, saving its data."""
    stopped = EmbeddedRedis(app.settings.home).stop()
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
    target = ["-s", url.removeprefix("unix://")] if url.startswith("unix://") else ["-u", url]
    binary = str(bundled_binary("redis-cli"))
    os.execv(binary, [binary, *target, *args])


COMMANDS = [redis]
