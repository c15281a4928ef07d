"""The job commands of the CLI: eventlog (and --follow), journal, urgency, raise, purge."""

import threading
import time

from jobjournal.common import events as ev
from jobjournal.common.ids import f58
from jobjournal.common.keys import LEGACY
from jobjournal.manager import client
from tests.helpers import DEADLINE, eventlog, names, recording, submit, wait_for, wait_inactive


def test_eventlog_prints_one_line_per_event(redis, start_manager, cli):
    start_manager()
    [job_id] = submit(redis, sim={"runtime": 0, "exit_code": 1})
    wait_inactive(redis, [job_id])
    result = cli("eventlog", "--human", f58(job_id))
    lines = result.output.splitlines()
    assert [line.split()[1] for line in lines] == names(redis, job_id)
    assert lines[0].startswith("0.000000 submit {") and '"userid":1000' in lines[0]
    assert 'finish {"status":256}' in result.output


def test_eventlog_follow_waits_until_the_job_is_inactive(redis, start_manager, cli):
    start_manager()
    [job_id] = submit(redis, urgency=0)
    wait_for(lambda: "priority" in names(redis, job_id))
    followed = threading.Event()

    def release_once_followed(commands):
        """Release the job once the follower has read its events and waits for more (an XREAD
        after the first entry); at the deadline anyway, so that the follower ends."""
        streams = f" STREAMS {LEGACY.job_eventlog(job_id)} "
        deadline = time.monotonic() + DEADLINE
        while time.monotonic() < deadline and not followed.is_set():
            if any(streams in c and not c.endswith(f"{streams}0-0") for c in list(commands)):
                followed.set()
            time.sleep(0.02)
        client.set_urgency(redis, job_id, 16, userid=1000)

    with recording(redis) as commands:
        release = threading.Thread(target=release_once_followed, args=(commands,))
        release.start()
        try:
            result = cli("eventlog", "--follow", str(job_id))
        finally:
            release.join()
    assert followed.is_set(), "the follower never waited for an event"
    assert result.output.splitlines()[-1].split()[1] == "clean"


def test_journal_shows_the_newest_entries_with_their_sequence(redis, start_manager, cli):
    start_manager()
    wait_inactive(redis, submit(redis))
    lines = cli("journal", "--tail", "3").output.splitlines()
    assert [line.split()[4] for line in lines] == ["release", "free", "clean"]
    assert lines[-1].split()[1] == "seq=10"


def test_raise_and_purge_report_per_job_errors(redis, start_manager, cli):
    start_manager()
    [done] = submit(redis)
    [running] = submit(redis, sim={"runtime": 30})
    wait_inactive(redis, [done])
    wait_for(lambda: "start" in names(redis, running))
    result = cli("raise", "-t", "node-failure", "-m", "rack 3", str(running))
    assert result.exit_code == 0
    wait_inactive(redis, [running])
    assert "node-failure" in cli("eventlog", str(running)).output
    result = cli("purge", "--num-limit", "0")
    assert "use --force to purge 2 of 2 inactive jobs" in result.output
    result = cli("purge", f58(done))  # as `flux job purge ID`: nothing goes without --force
    assert result.exit_code == 0 and "use --force to purge 1 of 2 inactive jobs" in result.output
    assert redis.exists(LEGACY.job_eventlog(done))
    result = cli("purge", f58(done), "--num-limit", "1")
    assert result.exit_code == 2 and "not both" in result.output
    result = cli("purge", "--num-limit", "0", "--force")
    assert "purged 2 inactive jobs, 0 remaining" in result.output
    result = cli("purge", str(done))
    assert result.exit_code == 1 and f"{f58(done)}: no such job" in result.output


def test_urgency_takes_flux_s_words_as_well_as_numbers(redis, start_manager, cli):
    start_manager(nodes=1, cores_per_node=1)
    submit(redis, sim={"runtime": 60})  # holds the only core: the job below stays pending
    [job_id] = submit(redis)
    wait_for(lambda: "priority" in names(redis, job_id))

    def urgency() -> int:
        return [event for event in eventlog(redis, job_id) if isinstance(event, ev.Urgency)][-1].urgency

    for word, value in (("expedite", 31), ("hold", 0), ("DEFAULT", 16)):
        result = cli("urgency", f58(job_id), word)
        assert result.exit_code == 0, result.output
        wait_for(lambda value=value: urgency() == value)
    result = cli("urgency", f58(job_id), "soon")
    assert result.exit_code == 2 and "'soon' is not an urgency: 0-31, hold (0), default (16)" in result.output


def test_version_and_short_help_are_there():
    import subprocess
    import sys

    from tests.conftest import ROOT

    version = subprocess.run([sys.executable, "-m", "jobjournal", "--version"], capture_output=True, text=True,
                             cwd=ROOT, timeout=60)
    assert version.returncode == 0 and version.stdout.startswith("jobjournal, version ")
    short = subprocess.run([sys.executable, "-m", "jobjournal", "jobs", "-h"], capture_output=True, text=True,
                           cwd=ROOT, timeout=60)
    assert short.returncode == 0 and "--since" in short.stdout and "[default: 30s]" in short.stdout


def test_every_command_and_option_says_what_it_is_for():
    import click

    from jobjournal.cli import main

    def commands(group, path=()):
        for name, command in group.commands.items():
            if isinstance(command, click.Group):
                yield from commands(command, (*path, name))
            else:
                yield (*path, name), command

    silent = [(" ".join(path), option.opts[0]) for path, command in commands(main) for option in command.params
              if isinstance(option, click.Option) and not option.help]
    assert silent == []
    assert all(command.help for _, command in commands(main))
