"""Leases on a real Redis: a failed renewal is never counted as a renewal."""

import pytest
import redis as redis_lib

from jobjournal.common import lease as lease_module
from jobjournal.common.lease import Lease
from tests.helpers import SettableClock


def test_a_lost_lease_stays_lost_until_renewed_not_for_a_third_of_its_ttl(redis):
    clock = SettableClock(100.0)
    lease = Lease(redis, "jj:test:lease", ttl=30, clock=clock)
    assert lease.try_acquire()
    redis.delete("jj:test:lease")  # lapsed (or taken and given up) behind our back
    clock.advance(11)  # a renewal is due
    assert not lease.renew_if_due()
    assert not lease.renew_if_due()  # at once again: the failure was not counted as a renewal


def test_a_renewal_that_raises_is_tried_again_at_the_next_call(redis, monkeypatch):
    clock = SettableClock(100.0)
    lease = Lease(redis, "jj:test:lease", ttl=30, clock=clock)
    assert lease.try_acquire()
    clock.advance(11)
    real = lease_module.run_script

    def failing(*args, **kwargs):
        raise redis_lib.ConnectionError("Redis went away")

    monkeypatch.setattr(lease_module, "run_script", failing)
    with pytest.raises(redis_lib.ConnectionError):
        lease.renew_if_due()
    monkeypatch.setattr(lease_module, "run_script", real)
    calls = []
    monkeypatch.setattr(lease_module, "run_script", lambda *a, **k: calls.append(a) or real(*a, **k))
    assert lease.renew_if_due() and calls  # renewed now, not skipped as "done 0 s ago"
