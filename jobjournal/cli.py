"""`jobjournal`: the command line."""

from __future__ import annotations

import click

from jobjournal import (
    cli_job,
    cli_jobs,
    cli_lister,
    cli_migrate,
    cli_redis,
    cli_services,
    cli_status,
    cli_users,
    cli_web,
)
from jobjournal.context import Group, make_app


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"], "show_default": True})
@click.version_option(package_name="jobjournal", prog_name="jobjournal")
@click.pass_context
def main(ctx: click.Context) -> None:
    """A job manager and job lister that share one truth, kept in Redis Streams."""
    ctx.obj = make_app(ctx)


for module in (cli_redis, cli_services, cli_jobs, cli_job, cli_lister, cli_migrate, cli_status, cli_users, cli_web):
    for command in module.COMMANDS:
        main.add_command(command)
