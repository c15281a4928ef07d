"""One bad key never stops a process: a key of the wrong type (written by hand, by another program)
sets aside the one job it belongs to, with its reason in the dead letters, and everything else goes
on; a view key of the wrong type makes the lister build a new generation."""

from jobjournal.common import events as ev
from jobjournal.common import keys
from jobjournal.common.keys import LEGACY
from jobjournal.lister import query as q
from jobjournal.manager import client
from tests.faults.checks import assert_each_job_lived_once
from tests.helpers import (
    current_view,
    eventlog,
    naive_view,
    names,
    submit,
    wait_caught_up,
    wait_for,
    wait_inactive,
)


def _dead_letter_reasons(redis) -> list[str]:
    return [fields[b"reason"].decode() for _, fields in redis.xrange(keys.dead_letters())]


def test_a_job_whose_eventlog_turned_into_another_type_is_set_aside_and_the_manager_goes_on(redis, start_manager):
    start_manager()
    [held] = submit(redis, urgency=0)
    wait_for(lambda: names(redis, held)[-1] == "priority")
    redis.delete(LEGACY.job_eventlog(held))
    redis.set(LEGACY.job_eventlog(held), "not a stream")
    client.set_urgency(redis, held, 16, userid=1000)  # the manager posts to it: refused, set aside
    wait_for(lambda: any(f"job set aside: {LEGACY.job_eventlog(held)} is a string" in reason
                         for reason in _dead_letter_reasons(redis)), what="the job set aside")
    others = submit(redis, 5)
    wait_inactive(redis, others)
    assert_each_job_lived_once(redis, others)


def test_a_restart_sets_aside_a_job_whose_keys_are_of_the_wrong_type_and_restores_the_rest(redis, start_manager):
    first = start_manager()
    held = submit(redis, 3, urgency=0)
    wait_for(lambda: all(names(redis, job)[-1] == "priority" for job in held))
    first.stop.set()
    wait_for(lambda: not first.leading.is_set(), what="the first manager to stop")
    broken_log, broken_env, fine = held
    redis.delete(LEGACY.job_eventlog(broken_log))
    redis.sadd(LEGACY.job_eventlog(broken_log), "not a stream")
    redis.hset(LEGACY.job_environment(broken_env), "not", "a string")
    start_manager()  # restores: one job set aside, one ended with an exception, one carried on
    assert any(reason.startswith("job set aside: its eventlog cannot be read: WRONGTYPE")
               for reason in _dead_letter_reasons(redis))
    wait_inactive(redis, [broken_env])
    exception = next(event for event in eventlog(redis, broken_env) if isinstance(event, ev.Exception_))
    assert exception.type == "restart" and "environment cannot be read" in exception.note
    client.set_urgency(redis, fine, 16, userid=1000)
    wait_inactive(redis, [fine])
    assert "exception" not in names(redis, fine)


def test_a_view_key_of_the_wrong_type_makes_the_lister_build_a_new_generation(redis, start_manager, start_lister):
    start_manager()
    worker = start_lister()
    wait_inactive(redis, submit(redis, 3))
    wait_caught_up(redis)
    generation = worker.generation
    inactive = LEGACY.view_list(generation, "inactive")
    redis.delete(inactive)
    redis.set(inactive, "not a sorted set")
    later = submit(redis, 3)
    wait_inactive(redis, later)
    wait_for(lambda: worker.generation != generation and worker.applying.is_set(), what="a new generation")
    wait_caught_up(redis)
    assert current_view(redis) == naive_view(redis)
    assert q.stats(redis)["inactive"] == 6
