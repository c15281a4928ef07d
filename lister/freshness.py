"""How far the view can be trusted right now: which partitions no lister applies, which have no
view yet, and how far the view is behind the journal. The CLI says so before it answers (at once
when no view can come, as a warning when the answer may be out of date); the web view and
scripts may ask too. Two round trips, every node at once (`packed.reads`).
"""

from __future__ import annotations

import msgspec

from jobjournal.common import keys
from jobjournal.common.layout import Layout
from jobjournal.common.packed import reads
from jobjournal.common.resources import encode_idset

LAG_WARNING_S = 5.0
"""A view at least this many seconds behind its journal gets a warning."""


class Freshness(msgspec.Struct, frozen=True):
    unserved: list[int]
    """Partitions whose lister lease nobody holds: nothing applies their journal."""
    unbuilt: list[int]
    """Partitions with no complete view yet."""
    behind_events: int
    """Journal entries the views have not applied yet."""
    behind_s: float
    """At least this long behind: the age of the newest entry not applied (0: caught up)."""
    partitioned: bool = False
    listers: int = 0
    """Lister workers registered (beating, or gone less than two lease TTLs ago): one that has just
    started holds no lease yet, but will build the views."""

    def fatal(self) -> str | None:
        """Why no answer can come at all (no view, and no lister to build it), or None."""
        hopeless = [index for index in self.unbuilt if index in self.unserved]
        if not hopeless or self.listers:
            return None
        where = f" of {_partitions(hopeless)}" if self.partitioned else ""
        return f"no job view{where} and no lister to build it: start `jobjournal lister`"

    def warnings(self) -> list[str]:
        """What makes an answer possibly out of date, one line each."""
        said = []
        serving = [index for index in self.unserved if index not in self.unbuilt]
        if serving:
            where = f" {_partitions(serving)} of" if self.partitioned else ""
            said.append(f"no lister is applying{where} the view: this answer may be out of date")
        if self.behind_s >= LAG_WARNING_S:
            said.append(f"the view is at least {self.behind_s:.0f}s ({self.behind_events} events) behind the journal")
        return said


def freshness(redis, layout: Layout, now: float, lease_ttl: float) -> Freshness:
    """The view's freshness, measured against `now` (seconds since the epoch); a lister that beat
    within two `lease_ttl`s counts as one to come."""
    parts = layout.partitions
    live = ("ZCOUNT", keys.lister_members(), repr(now - 2 * lease_ttl), "+inf")
    [listers, *found] = reads(redis, [live] + [command for part in parts for command in (
        ("GET", part.view_current()), ("EXISTS", part.lister_lease()),
        ("HMGET", part.journal_head(), "seq", "last_id"))])
    currents, leases, heads = found[0::3], found[1::3], found[2::3]
    built = [(part, int(current)) for part, current in zip(parts, currents, strict=True) if current is not None]
    metas = reads(redis, [("HGET", part.view_meta(generation), "seq") for part, generation in built])
    behind_events, newest_ms = 0, 0
    head_of = dict(zip(parts, heads, strict=True))
    for (part, _), view_seq in zip(built, metas, strict=True):
        head_seq, last_id = head_of[part]
        missing = int(head_seq or 0) - int(view_seq or 0)
        if missing > 0:
            behind_events += missing
            newest_ms = max(newest_ms, entry_ms(last_id))
    return Freshness(
        unserved=[part.index for part, lease in zip(parts, leases, strict=True) if not lease],
        unbuilt=[part.index for part, current in zip(parts, currents, strict=True) if current is None],
        behind_events=behind_events,
        behind_s=max(0.0, now - newest_ms / 1000) if behind_events else 0.0,
        partitioned=layout.size > 1,
        listers=listers,
    )


def entry_ms(entry_id: bytes | None) -> int:
    """The milliseconds of a raw stream entry id (0 for none)."""
    return int(entry_id.split(b"-")[0]) if entry_id else 0


def _partitions(indexes: list[int]) -> str:
    """'partition 3' or 'partitions 2-3,5'."""
    return f"partition{'s' if len(indexes) > 1 else ''} {encode_idset(indexes)}"
