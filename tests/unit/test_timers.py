"""One-shot timers keyed by job id."""

from __future__ import annotations

from jobjournal.manager.timers import Timers


def fired(log: list, name: str):
    return lambda: log.append(name)


def test_due_timers_fire_in_due_order():
    timers, log = Timers(), []
    timers.set(30.0, 3, fired(log, "c"))
    timers.set(10.0, 1, fired(log, "a"))
    timers.set(20.0, 2, fired(log, "b"))
    for action in timers.pop_due(25.0):
        action()
    assert log == ["a", "b"]
    assert len(timers) == 1 and timers.next_due() == 30.0


def test_timers_due_at_the_same_time_fire_in_the_order_they_were_set():
    timers, log = Timers(), []
    for job_id, name in [(5, "first"), (1, "second"), (3, "third")]:
        timers.set(10.0, job_id, fired(log, name))
    for action in timers.pop_due(10.0):
        action()
    assert log == ["first", "second", "third"]


def test_a_timer_is_due_at_exactly_its_time_not_before():
    timers = Timers()
    timers.set(10.0, 1, lambda: None)
    assert timers.pop_due(9.999) == []
    assert len(timers.pop_due(10.0)) == 1


def test_a_timer_fires_once():
    timers = Timers()
    timers.set(1.0, 1, lambda: None)
    assert len(timers.pop_due(5.0)) == 1
    assert timers.pop_due(5.0) == [] and len(timers) == 0 and timers.next_due() is None


def test_a_new_timer_for_a_job_replaces_the_old_one():
    timers, log = Timers(), []
    timers.set(10.0, 1, fired(log, "old"))
    timers.set(20.0, 1, fired(log, "new"))
    assert len(timers) == 1
    for action in timers.pop_due(15.0):
        action()
    assert log == []
    for action in timers.pop_due(20.0):
        action()
    assert log == ["new"]


def test_replacing_a_timer_with_an_earlier_one_fires_only_the_new_one():
    timers, log = Timers(), []
    timers.set(20.0, 1, fired(log, "old"))
    timers.set(10.0, 1, fired(log, "new"))
    assert timers.next_due() == 10.0
    for action in timers.pop_due(100.0):
        action()
    assert log == ["new"]


def test_a_cancelled_timer_never_fires():
    timers, log = Timers(), []
    timers.set(10.0, 1, fired(log, "cancelled"))
    timers.set(10.0, 2, fired(log, "kept"))
    timers.cancel(1)
    for action in timers.pop_due(10.0):
        action()
    assert log == ["kept"] and len(timers) == 0


def test_cancelling_an_unknown_job_is_harmless():
    timers = Timers()
    timers.set(10.0, 1, lambda: None)
    timers.cancel(99)
    assert len(timers) == 1 and timers.next_due() == 10.0


def test_next_due_skips_cancelled_and_replaced_timers():
    timers = Timers()
    timers.set(5.0, 1, lambda: None)
    timers.set(6.0, 2, lambda: None)
    timers.set(7.0, 2, lambda: None)
    timers.set(8.0, 3, lambda: None)
    timers.cancel(1)
    assert timers.next_due() == 7.0
    timers.cancel(2)
    assert timers.next_due() == 8.0
    timers.cancel(3)
    assert timers.next_due() is None


def test_next_due_of_no_timers_is_none():
    assert Timers().next_due() is None


def test_a_job_can_get_a_timer_again_after_cancel():
    timers, log = Timers(), []
    timers.set(10.0, 1, fired(log, "first"))
    timers.cancel(1)
    timers.set(12.0, 1, fired(log, "again"))
    assert timers.next_due() == 12.0
    for action in timers.pop_due(12.0):
        action()
    assert log == ["again"]
