"""Commands packed by hand, in Redis' wire format, for bulk work.

redis-py packs and tracks every command in Python. For bulk work (a rebuild's writes, a
backlog's appends, a script with thousands of arguments: common/scripts.py) that costs more than Redis' own work,
so here commands are packed with hiredis and sent in one write, and their replies are read
at once (`execute_packed`) or later (`Pending`: Redis works while the caller goes on).
"""

from __future__ import annotations

import hiredis
import redis

pack = hiredis.pack_command
"""One command in Redis' wire format, for `execute_packed`: pack(("XADD", key, "*", ...))."""


def each(client, items: list, call) -> list:
    """`call(c, item)` for every item, each a read of one command, in one round trip: on `client`
    itself for one item (a pipeline costs more in Python than the round trip it saves), else in a
    pipeline. The replies, in order."""
    if len(items) == 1:
        return [call(client, items[0])]
    with client.pipeline(transaction=False) as pipe:
        for item in items:
            call(pipe, item)
        return pipe.execute()


def is_cluster(client) -> bool:
    """Whether `client` is a Redis Cluster client (a multi-key command must stay in one slot)."""
    return hasattr(client, "get_node_from_key")


def pool_for(client, key: str | None = None):
    """The connection pool for commands on `key`: the client's own, or on Redis Cluster the pool
    of the node that serves key's slot (every command sent together must be on one slot's node)."""
    if key is not None and is_cluster(client):
        return client.get_redis_connection(client.get_node_from_key(key)).connection_pool
    return client.connection_pool


def execute_packed(client: redis.Redis, commands: list[bytes], key: str | None = None) -> list:
    """Run commands made with `pack` in one write; their replies, in order.

    For bulk work (thousands of commands), where redis-py's per-command packing and
    bookkeeping cost more than Redis' own work. An error reply raises its ResponseError once
    every reply is read (the connection stays usable); a connection error drops the connection.
    """
    with Pending(client, key) as pending:
        pending.send(commands)
        return pending.replies()


class Pending:
    """Commands sent now whose replies are read later: Redis works on them while the caller
    goes on (reads one batch ahead, writes one batch behind). Holds a connection of the pool
    of its own until closed; closing with replies still due drops that connection."""

    def __init__(self, client: redis.Redis, key: str | None = None):
        """`key`: on Redis Cluster, a key of the one slot every command sent is on."""
        self._pool = pool_for(client, key)
        self._connection = self._pool.get_connection()
        self.due = 0
        """Commands sent whose replies were not read yet."""

    def send(self, commands: list[bytes]) -> None:
        try:
            self._connection.send_packed_command([b"".join(commands)])
        except BaseException:
            self._connection.disconnect()
            raise
        self.due += len(commands)

    def replies(self, raise_errors: bool = True) -> list:
        """Every reply due, in order; the first error reply raises once all are read (or, with
        `raise_errors` False, stands in the list as its ResponseError)."""
        replies: list = []
        errors: list[redis.ResponseError] = []
        try:
            while self.due:
                try:
                    replies.append(self._connection.read_response())
                except redis.ResponseError as err:
                    replies.append(err)
                    errors.append(err)
                self.due -= 1
        except BaseException:
            self._connection.disconnect()
            self.due = 0
            raise
        if errors and raise_errors:
            raise errors[0]
        return replies

    def close(self) -> None:
        if self.due:
            self._connection.disconnect()  # a blocked read may be due: do not wait for it
            self.due = 0
        self._pool.release(self._connection)

    def __enter__(self) -> Pending:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
