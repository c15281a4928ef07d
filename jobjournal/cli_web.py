"""`jobjournal web`: serve the web view, its JSON API and /metrics (jobjournal/web/)."""

from __future__ import annotations

import click

from jobjournal.context import App, pass_app


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on (the default takes connections from this machine alone).")
@click.option("--port", default=8000, type=click.IntRange(0, 65535), show_default=True, help="Port (0: any free one).")
@pass_app
def web(app: App, host, port) -> None:
    """Serve the read-only web view of the jobs, its JSON API (/api/v1/) and Prometheus metrics (/metrics)."""
    import uvicorn

    from jobjournal.web.app import make_app

    uvicorn.run(make_app(app.redis, app.settings, app.queue_redis), host=host, port=port, log_level="warning")


COMMANDS = [web]
