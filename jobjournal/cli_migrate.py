"""`jobjournal migrate`: copy a legacy store into a partitioned one."""

from __future__ import annotations

import click

from jobjournal.common.connection import connect_url
from jobjournal.context import App, pass_app


@click.command()
@click.option("--partitions", type=click.IntRange(2, 1024), required=True, help="Partitions of the new store.")
@click.option("--to", "target_url", required=True,
              help="The new store's Redis (redis://... or redis+cluster://...); it must be empty.")
@pass_app
def migrate(app: App, partitions, target_url) -> None:
    """Copy this store (JOBJOURNAL_REDIS_URL, legacy layout) into an empty one with partitions.

    Offline: stop the manager, ingest workers and listers first. The old store is only read, so it
    stays as it was for rollback; then point JOBJOURNAL_REDIS_URL at the new one and start again."""
    from jobjournal.manager.migrate import migrate as copy_store

    target = connect_url(target_url)
    with click.progressbar(length=1, label="copying jobs") as bar:

        def report(done: int, total: int) -> None:
            bar.length = max(total, 1)
            bar.update(done - bar.pos)

        copied = copy_store(app.redis, target, partitions, report, queues=app.queue_redis)
    click.echo(f"copied {copied['jobs']} jobs ({copied['active']} active), {copied['events']} events and "
               f"{copied['inbox']} inbox entries into {partitions} partitions at {target_url}")


COMMANDS = [migrate]
