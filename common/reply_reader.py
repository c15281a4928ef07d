"""Reading a full-journal reply, one batch ahead: the reader every consumer of a reply uses."""

from __future__ import annotations

from jobjournal.common.journal import text
from jobjournal.common.keys import Partition
from jobjournal.common.packed import Pending, pack
from jobjournal.common.reply_format import Item, decode_reply, entries_of, is_sentinel

REPLY_READ = 10
"""Reply entries one read asks for: about a thousand jobs."""


class ReplyReader:
    """Reads a full-journal reply one batch ahead: the next XREAD is on its way while the
    caller works on the batch it has (Redis and the caller work at once). Use it with `with`."""

    def __init__(self, redis, part: Partition, consumer: str, count: int = REPLY_READ, block_ms: int = 1000):
        self._key = part.journal_reply(consumer)
        self._pending = Pending(redis, self._key)
        self._count, self._block_ms = count, block_ms
        self.after = "0-0"
        self._ask()

    def next_batch(self) -> list[Item]:
        """What the next entries hold ([] if none came within block_ms); nothing more is asked
        for once the sentinel came."""
        [response] = self._pending.replies()
        entries = entries_of(response)
        if entries:
            self.after = text(entries[-1][0])
        if not (entries and is_sentinel(entries[-1][1])):
            self._ask()
        return decode_reply(entries)

    def _ask(self) -> None:
        command = ("XREAD", "COUNT", self._count, "BLOCK", self._block_ms, "STREAMS", self._key, self.after)
        self._pending.send([pack(command)])

    def close(self) -> None:
        self._pending.close()

    def __enter__(self) -> ReplyReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
