"""The job commands of the CLI: eventlog (and --follow), journal, urgency, raise, purge."""

import threading
import time

from jobjournal.common.ids import f58
from jobjournal.common.keys import LEGACY
from jobjournal.manager import client
from tests.helpers import DEADLINE, names, recording, submit, wait_for, wait_inactive


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
    assert "2 inactive jobs would be purged (use --force)" in result.output
    result = cli("purge", "--num-limit", "0", "--force")
    assert "purged 2 inactive jobs" in result.output
    result = cli("purge", str(done))
    assert result.exit_code == 1 and f"{f58(done)}: no such job" in result.output
