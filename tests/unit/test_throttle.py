"""The one throttle: at most once every N seconds, on an injected clock."""

from jobjournal.common.throttle import Throttle


class FakeClock:
    def __init__(self, now: float = 100.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_a_throttle_is_due_at_once_then_not_until_its_seconds_have_passed():
    clock = FakeClock()
    throttle = Throttle(2.0, clock)
    assert throttle.due()
    assert not throttle.due()
    clock.now += 1.999
    assert not throttle.due()
    clock.now += 0.001
    assert throttle.due()


def test_a_throttle_of_zero_seconds_is_always_due():
    throttle = Throttle(0, FakeClock())
    assert all(throttle.due() for _ in range(3))


def test_marking_counts_as_done_now_and_resetting_makes_it_due():
    clock = FakeClock()
    throttle = Throttle(5.0, clock)
    throttle.mark()
    assert not throttle.due()
    clock.now += 5
    throttle.mark()
    assert not throttle.due()
    throttle.reset()
    assert throttle.due()
