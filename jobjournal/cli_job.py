"""`jobjournal job`: one job. `job ID` (or `job show ID`) its attributes, `job output ID` what it
wrote (like `flux job attach`), `job wait ID` waits for it and exits with its exit code."""

from __future__ import annotations

import json
import os
import shlex
import sys
import time

import click

from jobjournal import jobs_format
from jobjournal.cli_lister import trusted_layout
from jobjournal.common import events as ev
from jobjournal.common import output
from jobjournal.common.ids import f58
from jobjournal.context import DURATION, JOB_ID, App, pass_app
from jobjournal.lister import query as q

WAIT_TIMEOUT = 124
"""`job wait`: the job's time limit ended it (as timeout(1))."""
WAIT_CANCELED = 125
"""`job wait`: it was canceled."""
WAIT_EXCEPTION = 126
"""`job wait`: another fatal exception ended it (it never ran, its executor was lost, ...)."""
WAIT_GAVE_UP = 75
"""`job wait --timeout`: the wait ran out, the job is still active (sysexits' EX_TEMPFAIL: try later)."""


class JobGroup(click.Group):
    """`job ID` is `job show ID`."""

    def parse_args(self, ctx, args):
        if args and args[0] not in self.commands and args[0] not in ctx.help_option_names:
            args = ["show", *args]
        return super().parse_args(ctx, args)


@click.group(cls=JobGroup)
def job() -> None:
    """One job: `job ID` shows it, `job output ID` prints what it wrote, `job wait ID` waits for it."""


@job.command()
@click.option("--wait-state", help="Wait until the job reaches this state (or becomes inactive).")
@click.option("--timeout", default="30s", type=DURATION, show_default=True, help="How long to wait (RFC 23 duration).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document (the jobspec too).")
@click.argument("job_id", type=JOB_ID)
@pass_app
def show(app: App, job_id, wait_state, timeout, as_json) -> None:
    """Show one job's attributes."""
    from jobjournal.manager.client import redacted_jobspec

    row = q.list_id(app.redis, job_id, wait_state=wait_state, timeout=timeout, layout=trusted_layout(app))
    jobspec = redacted_jobspec(app.redis, job_id)
    if as_json:
        click.echo(json.dumps({**row, "jobspec": jobspec}))
        return
    now = time.time()
    click.echo(f"{'id':<20} {f58(row['id'])} ({row['id']})")
    click.echo(f"{'user':<20} {jobs_format.username(row['userid'])} ({row['userid']})")
    if jobspec is not None:
        click.echo(f"{'command':<20} {shlex.join(jobspec.get('command', []))}")
    for name, value in row.items():
        if name not in ("id", "userid"):
            click.echo(f"{name:<20} {_shown(name, value, now)}")
    click.echo(f"{'jobspec':<20} {json.dumps(jobspec) if jobspec is not None else '(not readable with this role)'}")


def _shown(name: str, value, now: float) -> str:
    """An attribute as a person reads it: times as ISO and how long ago, None as '-'."""
    if value is None:
        return "-"
    if name.startswith("t_") or name == "expiration":
        if not value:
            return "-"
        return f"{jobs_format.iso_time(value)} ({jobs_format.ago(now - value)})"
    if name == "duration":
        return jobs_format.duration_text(value) if value else "none"
    return str(value)


@job.command("output")
@click.option("-f", "--follow", is_flag=True, help="Keep printing as the job writes, until it ends.")
@click.argument("job_id", type=JOB_ID)
@pass_app
def output_(app: App, job_id, follow) -> None:
    """Print what the job wrote: its stdout to stdout, its stderr to stderr (the process backend)."""
    from jobjournal.manager.client import job_output

    streams = {"stdout": sys.stdout.buffer, "stderr": sys.stderr.buffer}
    for entry in job_output(app.redis, job_id, follow=follow):
        match entry:
            case output.Chunk(stream=stream, data=data):
                streams[stream].write(data)
                streams[stream].flush()
            case output.End(dropped=dropped) if dropped:
                click.echo(f"[{dropped} bytes more were not kept: JOBJOURNAL_OUTPUT_MAX_BYTES]", err=True)


@job.command()
@click.option("--timeout", default="inf", type=DURATION, show_default=True,
              help="Give up after this long (RFC 23 duration).")
@click.argument("job_id", type=JOB_ID)
@pass_app
def wait(app: App, job_id, timeout) -> None:
    """Wait until the job is inactive; exit with its exit code (128+N if signal N killed it),
    124 if its time limit ended it, 125 if it was canceled, 126 for another exception, 75 if
    --timeout ran out first (the job goes on)."""
    from jobjournal.common.errors import StillActive
    from jobjournal.manager.client import follow_eventlog

    try:
        events = list(follow_eventlog(app.redis, job_id, timeout=None if timeout == float("inf") else timeout))
    except StillActive as err:
        click.echo(f"{f58(job_id)}: {err}", err=True)
        sys.exit(WAIT_GAVE_UP)
    code, why = wait_code(events)
    if why:
        click.echo(f"{f58(job_id)}: {why}", err=True)
    sys.exit(code)


def wait_code(events: list[ev.AnyEvent]) -> tuple[int, str]:
    """The exit code `job wait` gives for a job's whole eventlog, and what to say (or "")."""
    fatal = next((e for e in events if isinstance(e, ev.Exception_) and e.severity == 0), None)
    if fatal is not None:
        code = {"timeout": WAIT_TIMEOUT, "cancel": WAIT_CANCELED}.get(fatal.type, WAIT_EXCEPTION)
        return code, f"exception {fatal.type}" + (f": {fatal.note}" if fatal.note else "")
    finish = next((e for e in events if isinstance(e, ev.Finish)), None)
    if finish is None:
        return WAIT_EXCEPTION, "ended without running"
    try:
        code = os.waitstatus_to_exitcode(finish.status)
    except ValueError:
        return WAIT_EXCEPTION, f"ended with wait status {finish.status}"
    if code < 0:
        return 128 - code, f"killed by signal {-code}"
    return code, "" if code == 0 else f"exited with {code}"


COMMANDS = [job]
