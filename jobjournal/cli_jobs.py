"""Commands about jobs: submit, cancel, urgency, raise, purge, eventlog, journal."""

from __future__ import annotations

import contextlib
import datetime
import math
import os

import click

from jobjournal import progress
from jobjournal.common import journal as jr
from jobjournal.common.env_rules import EnvRuleError, job_environment
from jobjournal.common.errors import Queued
from jobjournal.common.events import event_context, event_name
from jobjournal.common.ids import f58
from jobjournal.common.jobspec import URGENCY_DEFAULT, URGENCY_EXPEDITE, URGENCY_HOLD, make_jobspec
from jobjournal.context import DURATION, FINITE_DURATION, JOB_ID, App, pass_app, userid_of
from jobjournal.manager import client


@click.command(context_settings={"allow_interspersed_args": False})
@click.option("-n", "--ntasks", default=1, type=click.IntRange(1), show_default=True, help="Tasks to run.")
@click.option("-N", "--nodes", type=click.IntRange(1), help="Spread the tasks over exactly N nodes.")
@click.option("-c", "--cores-per-task", default=1, type=click.IntRange(1), show_default=True,
              help="Cores each task needs.")
@click.option("-t", "--time-limit", type=DURATION, default="0", show_default=True,
              help="RFC 23 duration, e.g. 30s, 1.5m, 2h (0 or inf: none).")
@click.option("--name", default="", help="Job name (default: the command's basename).")
@click.option("-q", "--queue", default="default", show_default=True, help="The queue to submit to.")
@click.option("--urgency", default=16, type=click.IntRange(0, 31), show_default=True,
              help="0 holds the job, 31 expedites it.")
@click.option("--cwd", default="", help="Working directory (default: the current one).")
@click.option("--env", "env", multiple=True, metavar="RULE",
              help="Environment rule, in order (repeatable): NAME=VALUE sets, -PATTERN removes, PATTERN copies "
                   "the submitter's matching variables. The job starts from a copy of this environment "
                   "(--env=-* for none) without jobjournal's Redis credentials (a JOBJOURNAL_*_URL holding a "
                   "password, a JOBJOURNAL_* name with PASSWORD, SECRET or TOKEN, REDISCLI_AUTH): --env NAME, "
                   "the exact name, puts one back on purpose.")
@click.option("--env-remove", multiple=True, metavar="PATTERN",
              help="Remove the variables matching PATTERN (a glob), after the --env rules.")
@click.option("--cc", default=1, type=click.IntRange(1, 10000), help="Submit N copies in one request.")
@click.option("--sim-runtime", type=FINITE_DURATION, help="sim backend: how long the job runs.")
@click.option("--sim-exit-code", type=click.IntRange(0, 255), help="sim backend: its exit code.")
@click.argument("command", nargs=-1, required=True)
@pass_app
def submit(app: App, command, env, env_remove, cc, sim_runtime, sim_exit_code, cwd, time_limit, **fields) -> None:
    """Submit a job: jobjournal submit [OPTIONS] -- COMMAND ARGS... (prints the ids). The job runs
    with this environment (see --env)."""
    try:
        environment = job_environment(os.environ, [*env, *(f"-{pattern}" for pattern in env_remove)])
    except EnvRuleError as err:
        raise click.BadParameter(str(err), param_hint="--env") from err
    sim = None
    if sim_runtime is not None or sim_exit_code is not None:
        sim = {"runtime": sim_runtime or 0.0, "exit_code": sim_exit_code or 0}
    spec = make_jobspec(
        command=list(command),
        environment=environment,
        cwd=cwd or os.getcwd(),
        duration=0.0 if math.isinf(time_limit) else time_limit,
        sim=sim,
        **fields,
    )
    with progress.submitting(cc):
        ids = client.submit(app.redis, [spec] * cc, timeout=app.settings.request_timeout, queues=app.queue_redis,
                            max_request_bytes=app.settings.max_request_bytes)
    for job_id in ids:
        click.echo(f58(job_id))
    if not client.manager_running(app.redis):
        raise Queued(client.NO_MANAGER.format(what=f"{'the job waits' if cc == 1 else f'the {cc} jobs wait'}"))


def _report(errors: dict[int, str]) -> None:
    for job_id, error in errors.items():
        click.echo(f"{f58(job_id)}: {error}", err=True)
    if errors:
        raise SystemExit(1)


@click.command()
@click.option("-m", "--message", default="", help="A note for the cancel exception.")
@click.option("--all", "every", is_flag=True, help="Cancel all your active jobs (with -u, USER's).")
@click.option("-u", "--user", help="With --all: this user's jobs (name, uid, or 'all'; owner rules apply).")
@click.option("-n", "--dry-run", is_flag=True, help="With --all: only say how many jobs would be canceled.")
@click.argument("ids", nargs=-1, type=JOB_ID)
@pass_app
def cancel(app: App, ids, message, every, user, dry_run) -> None:
    """Cancel jobs: the IDs given, or with --all every active job of yours (or of -u USER)."""
    if bool(ids) == every:
        raise click.UsageError("give job IDs or --all")
    if (user or dry_run) and not every:
        raise click.UsageError("-u and --dry-run go with --all")
    if every:
        ids = _active_jobs(app, user)
        if dry_run or not ids:
            click.echo(f"{'would cancel' if dry_run else 'canceled'} {len(ids)} jobs")
            return
    errors = client.cancel(app.redis, list(ids), note=message, timeout=app.settings.request_timeout,
                           queues=app.queue_redis)
    if every:  # a job that ended between the listing and the cancel is no error of --all's
        errors = {job_id: error for job_id, error in errors.items() if error != "job is inactive"}
        click.echo(f"canceled {len(ids) - len(errors)} jobs")
    _report(errors)


def _active_jobs(app: App, user: str | None) -> list[int]:
    """The active jobs of `user` (default: the caller's; 'all': everyone's), from the view."""
    from jobjournal.lister import query as q

    userid = userid_of(user) if user else os.getuid()
    if userid != os.getuid() and os.getuid() != 0:  # as flux cancel: only the instance owner cancels others'
        raise click.UsageError("only root may cancel other users' jobs", ctx=None)
    query = q.ListQuery(attrs=["id"], states=["active"], userid=userid, max_work=app.settings.query_max_work)
    return [row["id"] for row in q.list_jobs(app.redis, query)]


class UrgencyType(click.ParamType):
    """An urgency, 0-31, or one of Flux's words for 0, 16 and 31."""

    name = "URGENCY"
    WORDS = {"hold": URGENCY_HOLD, "default": URGENCY_DEFAULT, "expedite": URGENCY_EXPEDITE}

    def convert(self, value, param, ctx):
        if isinstance(value, int):
            return value
        word = value.strip().lower()
        if word in self.WORDS:
            return self.WORDS[word]
        if word.isdigit() and 0 <= int(word) <= 31:
            return int(word)
        self.fail(f"{value!r} is not an urgency: 0-31, hold (0), default (16) or expedite (31)", param, ctx)


@click.command()
@click.argument("job_id", type=JOB_ID)
@click.argument("value", type=UrgencyType())
@pass_app
def urgency(app: App, job_id, value) -> None:
    """Set a pending job's urgency: 0-31, or hold (0), default (16), expedite (31)."""
    _report(client.set_urgency(app.redis, job_id, value, timeout=app.settings.request_timeout, queues=app.queue_redis))


@click.command("raise")
@click.option("-t", "--type", "type_", default="cancel", show_default=True, help="The exception type (one word).")
@click.option("-s", "--severity", default=0, type=click.IntRange(0, 7), show_default=True,
              help="0 ends the job; 1-7 only note it.")
@click.option("-m", "--message", default="", help="A note for the exception.")
@click.argument("ids", nargs=-1, required=True, type=JOB_ID)
@pass_app
def raise_(app: App, ids, type_, severity, message) -> None:
    """Raise an exception on jobs (severity 0 ends them)."""
    errors = client.raise_exception(
        app.redis, list(ids), type_, severity, message, timeout=app.settings.request_timeout, queues=app.queue_redis
    )
    _report(errors)


@click.command()
@click.option("--age-limit", type=FINITE_DURATION, help="Purge inactive jobs older than this.")
@click.option("--num-limit", type=click.IntRange(0), help="Keep at most this many inactive jobs.")
@click.option("--force", is_flag=True, help="Purge; without it, only count what would go.")
@click.argument("ids", nargs=-1, type=JOB_ID)
@pass_app
def purge(app: App, ids, age_limit, num_limit, force) -> None:
    """Remove inactive jobs from Redis: the given IDs, or those beyond the limits. Without --force
    only say how many would go (as `flux job purge`)."""
    if not ids and age_limit is None and num_limit is None:
        raise click.UsageError("give job IDs, --age-limit or --num-limit")
    if ids and (age_limit is not None or num_limit is not None):
        raise click.UsageError("give job IDs or limits (--age-limit, --num-limit), not both")
    with progress.purging(app.redis, len(ids) or None) if force else contextlib.nullcontext():
        errors, data = client.purge(app.redis, ids, age_limit, num_limit, force, timeout=app.settings.request_timeout,
                                    queues=app.queue_redis)
    inactive = data.get("inactive")
    if force:
        remaining = "" if inactive is None else f", {inactive} remaining"
        click.echo(f"purged {data['purged']} inactive jobs{remaining}")
    else:
        of = "" if inactive is None else f" of {inactive}"
        click.echo(f"use --force to purge {data['would_purge']}{of} inactive jobs")
    _report(errors)


def _format_event(event, start: float | None = None) -> str:
    when = (
        f"{event.timestamp - start:.6f}"
        if start is not None
        else datetime.datetime.fromtimestamp(event.timestamp).isoformat(timespec="microseconds")
    )
    context = event_context(event).decode()
    return f"{when} {event_name(event)}" + ("" if context == "{}" else f" {context}")


@click.command()
@click.option("-f", "--follow", is_flag=True, help="Wait for new events until the job is inactive.")
@click.option("-H", "--human", is_flag=True, help="Times relative to submission.")
@click.argument("job_id", type=JOB_ID)
@pass_app
def eventlog(app: App, job_id, follow, human) -> None:
    """Print a job's eventlog."""
    events = client.follow_eventlog(app.redis, job_id) if follow else client.eventlog(app.redis, job_id)
    start = None
    for event in events:
        if human and start is None:
            start = event.timestamp
        click.echo(_format_event(event, start))


@click.command()
@click.option("--tail", default=10, type=click.IntRange(1), show_default=True, help="Entries to show.")
@pass_app
def journal(app: App, tail) -> None:
    """Print the newest journal entries (of every partition, by entry id)."""
    from jobjournal.common.layout import read_layout

    layout = read_layout(app.redis)
    newest = []
    for part in layout.partitions:
        newest += [(jr.stream_order(jr.text(entry_id)), part, entry_id, fields)
                   for entry_id, fields in app.redis.xrevrange(part.journal(), count=tail)]
    for _, part, entry_id, fields in sorted(newest, key=lambda found: found[0])[-tail:]:
        entry = jr.decode_journal_entry(entry_id, fields, part.index)
        text = "purge" if entry.is_purge else _format_event(entry.event)
        extra = " +jobspec" if entry.jobspec else (" +R" if entry.R else "")
        where = f" p{part.index}" if part.tag else ""
        click.echo(f"{entry.entry_id}{where} seq={entry.seq} {f58(entry.job_id)} {text}{extra}")


COMMANDS = [submit, cancel, urgency, raise_, purge, eventlog, journal]
