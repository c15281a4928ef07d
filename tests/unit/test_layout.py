"""The partitioned layout, without a server: tags, job placement, and every script call in one slot."""

from collections import Counter

import pytest
from redis.crc import REDIS_CLUSTER_HASH_SLOTS, key_slot

from jobjournal.common import events as ev
from jobjournal.common import keys
from jobjournal.common.ids import IdGenerator
from jobjournal.common.layout import LEGACY, LayoutError, new_layout, partition_tags, splitmix64
from jobjournal.common.lease import Lease
from jobjournal.lister.model import JobView
from jobjournal.lister.view import Changes
from jobjournal.manager import backlog, posting, purge


@pytest.mark.parametrize("count", [1, 3, 16, 64])
def test_partition_p_is_tagged_in_the_pth_of_p_equal_slot_ranges(count):
    for index, part in enumerate(new_layout(count).partitions):
        slot = key_slot(part.journal().encode())
        assert index * REDIS_CLUSTER_HASH_SLOTS // count <= slot < (index + 1) * REDIS_CLUSTER_HASH_SLOTS // count


def test_sixteen_partitions_spread_evenly_over_three_masters_with_equal_slot_ranges():
    ranges = [(0, 5461), (5461, 10923), (10923, 16384)]
    per_master = Counter(
        next(m for m, (low, high) in enumerate(ranges) if low <= key_slot(part.journal().encode()) < high)
        for part in new_layout(16).partitions
    )
    assert sorted(per_master.values()) == [5, 5, 6]


def test_jobs_of_one_generator_spread_over_every_partition_not_only_the_first():
    clock = iter(range(10**6)).__next__
    generator = IdGenerator(7, clock=lambda: 1.8e9 + clock() / 1000)  # one id per millisecond: seq 0
    layout = new_layout(16)
    counts = Counter(layout.partition_of(generator.next_id()).index for _ in range(16000))
    assert len(counts) == 16 and min(counts.values()) > 800, counts  # `id mod 16` would put all in 0


def test_splitmix64_is_a_64_bit_mix():
    assert splitmix64(0) != splitmix64(1) and all(0 <= splitmix64(v) < 2**64 for v in (0, 2**64 - 1, 12345))


def test_the_legacy_layout_has_one_partition_with_todays_names():
    [part] = LEGACY.partitions
    assert part == keys.LEGACY and LEGACY.legacy
    assert part.journal() == "jj:journal" and part.job_eventlog(5) == "jj:job:{5}:eventlog"
    assert part.manager_fence() == keys.manager_lease() and part.view_meta(2) == "jj:view:{g2}:meta"


def test_a_layout_of_no_partitions_is_refused():
    with pytest.raises(LayoutError):
        partition_tags(0)


class _Recorder:
    """Stands in for run_script: records each call's keys instead of calling Redis."""

    def __init__(self):
        self.calls: list[tuple[str, list[str]]] = []

    def __call__(self, client, script, keys_, args):
        self.calls.append((script.name, list(keys_)))
        return []

    def many(self, client, calls):
        return [self(client, *call) for call in calls]


def _one_slot(calls) -> None:
    assert calls
    for name, call_keys in calls:
        slots = {key_slot(key.encode()) for key in call_keys}
        assert len(slots) == 1, f"{name}: keys in slots {sorted(slots)}: {call_keys}"


def test_every_script_call_of_a_partitioned_store_keeps_its_keys_in_one_slot(monkeypatch):
    recorder = _Recorder()
    monkeypatch.setattr(posting, "run_scripts", recorder.many)
    for module in (purge, backlog):
        monkeypatch.setattr(module, "run_script", recorder)
    import jobjournal.common.lease as lease_module
    import jobjournal.lister.view as view_module

    monkeypatch.setattr(lease_module, "run_script", recorder)
    monkeypatch.setattr(view_module, "run_script", recorder)
    layout = new_layout(16)
    poster = posting.EventPoster(None, layout, "token", 0, renew=lambda: None)
    for job_id in range(1000, 1200):
        poster.add(job_id, ev.Submit(timestamp=1.0, userid=1, urgency=16))
    poster.flush("5-0")
    purge.purge_jobs(None, layout, "token", 0, range(1000, 1200), 2.0)
    for part in layout.partitions:
        backlog.append(None, part.journal_reply("c"), 60, [("1-0", ("type", "jobs"))], first=True)
        Lease(None, part.lister_lease(), 5).renew_if_due()
        changes = Changes(part, 3)
        changes.update(None, JobView(id=7, userid=1, state="INACTIVE", result="FAILED", t_inactive=2.0))
        changes.apply(None, "token", 0, 1, "1-0")
    names = {name for name, _ in recorder.calls}
    assert names == {"post_events", "purge_jobs", "append_reply", "renew_lease", "apply_batch"}
    _one_slot(recorder.calls)
