"""`jobjournal web`: serve the web view, its JSON API and /metrics (jobjournal/web/)."""

from __future__ import annotations

import click

from jobjournal.context import App, pass_app


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on (the default takes connections from this machine alone).")
@click.option("--port", default=8000, type=click.IntRange(0, 65535), show_default=True, help="Port (0: any free one).")
@click.option("--actions", is_flag=True, help="Let people cancel jobs and set their urgency, each logged in (HTTP "
              "Basic) as their own Redis ACL user (`jobjournal user add`); read-only without it.")
@pass_app
def web(app: App, host, port, actions) -> None:
    """Serve the web view of the jobs, its JSON API (/api/v1/) and Prometheus metrics (/metrics);
    read-only unless --actions. Serve it over HTTPS (a reverse proxy) where passwords cross a network."""
    import uvicorn

    from jobjournal.web.app import make_app

    uvicorn.run(make_app(app.redis, app.settings, app.queue_redis, actions=actions), host=host, port=port,
                log_level="warning")


COMMANDS = [web]
