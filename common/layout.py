"""How a store is laid out: P partitions, each under one hash tag, recorded in Redis.

A store is created with P partitions (`jobjournal.common.keys.layout()`: a JSON document with the
layout version and the P tags, one per partition). Every key of one partition (its journal, head, job sets,
eventlogs, environment keys, reply streams, view and leases) carries the partition's hash tag, so
it lives in one Redis Cluster slot and every script stays one atomic call.

- **Tags** spread evenly over the slot ranges: tag p is the first `"<p>.<n>"` whose slot lies in
  the p-th of P equal ranges of the 16384 slots (so P masters with equal slot ranges get one
  partition each; naive `{p0}…{p7}` put 2/2/4 on three masters).
- **Job -> partition** by a well-mixed hash of the id (splitmix64), not `id mod P`: an id's low 10
  bits are a per-millisecond sequence, usually 0, so `id mod 16` would put nearly every job in
  partition 0.
- **No layout record** means the legacy layout: one partition under today's key names, byte for
  byte (`keys.LEGACY`), so a store made before partitions keeps working.
"""

from __future__ import annotations

import msgspec
from redis.crc import REDIS_CLUSTER_HASH_SLOTS, key_slot

from jobjournal.common import keys
from jobjournal.common.errors import JobJournalError
from jobjournal.common.keys import Partition
from jobjournal.common.packed import is_cluster

LAYOUT_VERSION = 1
MAX_PARTITIONS = 1024
MASK64 = (1 << 64) - 1


class LayoutError(JobJournalError):
    """The store's layout record is missing where one is needed, foreign, or not what was asked."""


class Layout(msgspec.Struct, frozen=True):
    version: int
    tags: list[str]
    """One hash tag per partition; [""] for the legacy layout."""

    @property
    def size(self) -> int:
        return len(self.tags)

    @property
    def partitions(self) -> list[Partition]:
        return [Partition(index, tag) for index, tag in enumerate(self.tags)]

    @property
    def legacy(self) -> bool:
        return self.tags == [""]

    def partition_of(self, job_id: int) -> Partition:
        """The partition that holds a job (for ever: a job never moves)."""
        index = splitmix64(job_id) % len(self.tags) if len(self.tags) > 1 else 0
        return Partition(index, self.tags[index])


LEGACY = Layout(version=0, tags=[""])
"""Today's layout: one partition, the key names of a store made before partitions."""

_decoder = msgspec.json.Decoder(Layout)


def splitmix64(value: int) -> int:
    """A well-mixed 64-bit hash of a 64-bit integer (Steele, Lea and Flood's SplitMix64 finalizer)."""
    z = (value + 0x9E3779B97F4A7C15) & MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    return z ^ (z >> 31)


def partition_tags(count: int) -> list[str]:
    """P hash tags, the p-th in the p-th of P equal slot ranges."""
    if not 1 <= count <= MAX_PARTITIONS:
        raise LayoutError(f"{count} partitions: choose 1 to {MAX_PARTITIONS}")
    tags = []
    for p in range(count):
        low, high = p * REDIS_CLUSTER_HASH_SLOTS // count, (p + 1) * REDIS_CLUSTER_HASH_SLOTS // count
        n = 0
        while not low <= key_slot(f"{p}.{n}".encode()) < high:
            n += 1
        tags.append(f"{p}.{n}")
    return tags


def read_layout(redis) -> Layout:
    """The store's layout; LEGACY when it has no record. LayoutError for a record that does not
    decode or has a version this code does not know."""
    return _recorded(redis) or LEGACY


def _recorded(redis) -> Layout | None:
    data = redis.get(keys.layout())
    if data is None:
        return None
    try:
        layout = _decoder.decode(data)
    except (msgspec.DecodeError, msgspec.ValidationError) as err:
        raise LayoutError(f"{keys.layout()} is not a layout record: {err}") from err
    if layout.version != LAYOUT_VERSION or not layout.tags or "" in layout.tags:
        raise LayoutError(f"{keys.layout()} has layout version {layout.version}; this code reads {LAYOUT_VERSION}")
    return layout


def store_layout(redis, partitions: int) -> Layout:
    """The layout every process uses: the recorded one; else, for `partitions` > 1 (the setting),
    a new one recorded now if the store is empty (legacy otherwise: `jobjournal migrate` converts)."""
    layout = _recorded(redis)
    if layout is None and partitions > 1:
        try:
            layout = create_layout(redis, partitions)
        except LayoutError:
            layout = read_layout(redis)
    layout = layout or LEGACY
    if layout.legacy and is_cluster(redis):
        raise LayoutError("a store on Redis Cluster must be partitioned: set JOBJOURNAL_PARTITIONS (16, say) "
                          "when it is created, or `jobjournal migrate` a legacy one into it")
    return layout


def new_layout(count: int) -> Layout:
    """A layout of `count` partitions (not recorded)."""
    return Layout(version=LAYOUT_VERSION, tags=partition_tags(count))


def create_layout(redis, count: int) -> Layout:
    """Record a layout of `count` partitions in an empty store (or return the same one already
    recorded). LayoutError if the store already has another layout, or legacy data."""
    wanted = new_layout(count)
    if redis.set(keys.layout(), msgspec.json.encode(wanted), nx=True):
        if _has_legacy_data(redis):
            redis.delete(keys.layout())
            raise LayoutError("this store holds jobs in the legacy layout: use `jobjournal migrate` instead")
        return wanted
    found = read_layout(redis)
    if found != wanted:
        raise LayoutError(f"the store already has {found.size} partitions, not {count}")
    return found


def _has_legacy_data(redis) -> bool:
    legacy = keys.LEGACY
    return bool(redis.exists(legacy.journal_head(), legacy.active_jobs(), legacy.inactive_jobs()))
