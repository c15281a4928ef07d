"""Reading the part of a full-journal reply this process claims, when processes share a rebuild.

Version-2 reply entries are numbered (ids 1-0, 2-0, ...; the sentinel has the largest id there
is: common/reply_format.py). Each reader, the lister worker and every helper, claims entry
numbers with `INCR` on the reply's claim counter, first come, first served, and fetches just
those entries (`XREAD ... STREAMS reply <n-1>-0`), so a reader that starts late or runs slower
simply takes fewer. A claim past the last entry fetches the sentinel, which ends every reader.
The next claim and fetch are on their way while a reader derives.
"""

from __future__ import annotations

import collections

from jobjournal.common import reply_format as rf
from jobjournal.common.keys import Partition
from jobjournal.common.packed import Pending, pack
from jobjournal.lister.errors import SharedRebuildFailed


class ClaimingReader:
    """The reply entries this reader claims, one a batch, then the sentinel. Use it with `with`."""

    def __init__(self, redis, part: Partition, consumer: str, block_ms: int = 500):
        self._key = part.journal_reply(consumer)
        self._claims = part.journal_reply_claims(consumer)
        self._block_ms = block_ms
        self._pending = Pending(redis, self._key)
        self._pending.send([pack(("INCR", self._claims)), pack(("EXPIRE", self._claims, rf.REPLY_TTL))])
        self._held = collections.deque(self._pending.replies()[:1])
        """Claimed entry numbers not fetched yet, the one being fetched first (at most two)."""
        self._claiming = False
        self._done = False
        self._ask()

    def next_batch(self) -> list[rf.Item]:
        """The items of the next claimed entry, or the sentinel ([] if the entry was not written
        within block_ms). Meanwhile the next entry is claimed and asked for."""
        replies = self._pending.replies()
        if self._claiming:
            self._held.append(replies[1])
        entries = rf.entries_of(replies[0])
        if entries:
            entry_id, fields = entries[0]
            self._done = rf.is_sentinel(fields)  # claims held past the last entry: none lost
            due = rf.SENTINEL_ID if self._done else rf.numbered_id(self._held[0])
            if entry_id != due.encode():
                raise SharedRebuildFailed(f"reply entry {entry_id!r} where entry {self._held[0]} was due: "
                                          "the reply is not numbered (a manager older than reply version 2?)")
            self._held.popleft()
        if not self._done:
            self._ask()
        return rf.decode_reply(entries)

    def _ask(self) -> None:
        """Fetch the first entry after <n - 1>-0 (entry n, or the sentinel once n is past the
        last), and claim another unless two are held."""
        after = rf.numbered_id(self._held[0] - 1)
        read = ("XREAD", "COUNT", 1, "BLOCK", self._block_ms, "STREAMS", self._key, after)
        self._claiming = len(self._held) < 2
        self._pending.send([pack(read)] + ([pack(("INCR", self._claims))] if self._claiming else []))

    def __enter__(self) -> ClaimingReader:
        return self

    def __exit__(self, *exc) -> None:
        self._pending.close()
