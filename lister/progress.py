"""Each partition's progress, for metrics and the web view: the journal's head, how far its view
has applied it, who holds its lister lease, and a build in progress (jobs loaded of the jobs the
partition holds). Two round trips, every node at once (`packed.reads`)."""

from __future__ import annotations

import msgspec

from jobjournal.common.layout import Layout
from jobjournal.common.packed import reads
from jobjournal.lister.freshness import entry_ms


class PartitionProgress(msgspec.Struct, frozen=True):
    index: int
    posted: int
    """The journal's seq: events posted to the partition, ever."""
    applied: int | None
    """The seq its view has applied (None: no view yet)."""
    behind_s: float
    """Between the journal's newest entry and the view's cursor (0: caught up)."""
    holder: str | None
    """The lister lease's holder (host:pid:random), or None."""
    building: int | None = None
    """Jobs loaded so far by a build in progress (None: none)."""
    jobs: int = 0
    """Jobs the partition holds (active and inactive): what a build loads."""

    @property
    def behind(self) -> int:
        return self.posted - self.applied if self.applied is not None else self.posted


def partition_progress(redis, layout: Layout) -> list[PartitionProgress]:
    parts = layout.partitions
    found = reads(redis, [command for part in parts for command in (
        ("HMGET", part.journal_head(), "seq", "last_id"), ("GET", part.view_current()),
        ("GET", part.lister_lease()), ("HGET", part.view_building(), "jobs"),
        ("SCARD", part.active_jobs()), ("ZCARD", part.inactive_jobs()))])
    rows = [found[at:at + 6] for at in range(0, len(found), 6)]
    built = [(part, int(row[1])) for part, row in zip(parts, rows, strict=True) if row[1] is not None]
    metas = dict(zip([part.index for part, _ in built], reads(
        redis, [("HMGET", part.view_meta(generation), "seq", "cursor") for part, generation in built]), strict=True))
    return [_progress(part.index, row, metas.get(part.index)) for part, row in zip(parts, rows, strict=True)]


def _progress(index: int, row: list, meta: list | None) -> PartitionProgress:
    (seq, last_id), _, holder, building, active, inactive = row
    applied = int(meta[0] or 0) if meta else None
    behind_ms = max(0, entry_ms(last_id) - entry_ms(meta[1])) if meta and applied < int(seq or 0) else 0
    return PartitionProgress(
        index=index, posted=int(seq or 0), applied=applied, behind_s=behind_ms / 1000,
        holder=holder.decode() if holder else None, building=int(building) if building is not None else None,
        jobs=int(active) + int(inactive),
    )
