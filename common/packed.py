"""Commands packed by hand, in Redis' wire format, for bulk work.

redis-py packs and tracks every command in Python. For bulk work (a rebuild's writes, a
backlog's appends, a script with thousands of arguments: common/scripts.py) and for a query's
hundred small reads (`reads`) that costs more than Redis' own work, so here commands are packed
with hiredis and sent in one write, and their replies are read at once (`execute_packed`) or
later (`Pending`: Redis works while the caller goes on).
"""

from __future__ import annotations

import hiredis
import redis

pack = hiredis.pack_command
"""One command in Redis' wire format, for `execute_packed`: pack(("XADD", key, "*", ...))."""


def reads(client, commands: list[tuple]) -> list:
    """Read commands (tuples such as ("GET", key): the key second) in one round trip per node, every
    node's sent before any is read: the raw replies (as Redis sends them, in RESP2 or RESP3: `pairs`
    reads both), in order. redis-py's pipelines cost more in Python than Redis' own
    work for a query's hundred small reads, on Redis Cluster most of all.

    An error reply raises once every reply is read. On Redis Cluster a MOVED reply (a slot moved
    since the client read the slot table) refreshes the table and reads once more; ASK (a slot in
    the middle of a migration) raises."""
    try:
        return _reads(client, commands)
    except redis.ResponseError as err:
        if not refreshed_after(client, err):
            raise
        return _reads(client, commands)


def refreshed_after(client, err: Exception) -> bool:
    """Whether `err` is a MOVED reply from a Redis Cluster node: the slot moved since the client read
    the slot table, and the command did not run. Then the table is read again (the caller may send
    the command once more)."""
    if not (is_cluster(client) and isinstance(err, redis.exceptions.MovedError)):
        return False
    client.nodes_manager.initialize()
    return True


def _reads(client, commands: list[tuple]) -> list:
    groups: dict = {}
    pools: dict = {}  # hash tag -> its node's pool: a query's hundred keys have a few tags
    for index, command in enumerate(commands):
        key = command[1]
        tag = _tag_of(key)
        pool = pools.get(tag) or pools.setdefault(tag, pool_for(client, key))
        groups.setdefault(pool, []).append(index)
    replies: list = [None] * len(commands)
    sent, errors = [], []
    try:
        for pool, indexes in groups.items():
            pending = Pending(client, pool=pool)
            sent.append((pending, indexes))
            pending.send([pack(commands[index]) for index in indexes])
        for pending, indexes in sent:
            for index, reply in zip(indexes, pending.replies(raise_errors=False), strict=True):
                replies[index] = reply
                if isinstance(reply, redis.ResponseError):
                    errors.append(reply)
    finally:
        for pending, _ in sent:
            pending.close()
    if errors:
        raise errors[0]
    return replies


def _tag_of(key: str) -> str:
    """What decides key's slot: its hash tag with the braces and what precedes them (Redis hashes the
    text between the first '{' and the next '}' when it is not empty), or the whole key."""
    start = key.find("{")
    end = key.find("}", start + 1)
    return key[: end + 1] if start >= 0 and end > start + 1 else key


def pairs(reply) -> list:
    """A reply of pairs (ZRANGE WITHSCORES, HGETALL) as [(a1, b1), (a2, b2), ...], from either protocol:
    RESP3 sends a map or a list of pairs (scores as doubles), RESP2 a flat list (scores as strings:
    float() reads both)."""
    if isinstance(reply, dict):
        return list(reply.items())
    if reply and isinstance(reply[0], list):
        return reply
    return list(zip(reply[::2], reply[1::2], strict=True))


def is_cluster(client) -> bool:
    """Whether `client` is a Redis Cluster client (a multi-key command must stay in one slot)."""
    return hasattr(client, "get_node_from_key")


def pool_for(client, key: str | None = None):
    """The connection pool for commands on `key`: the client's own, or on Redis Cluster the pool
    of the node that serves key's slot (every command sent together must be on one slot's node)."""
    if key is not None and is_cluster(client):
        return client.get_redis_connection(client.get_node_from_key(key)).connection_pool
    return client.connection_pool


def taken_transaction(pipe) -> list[tuple]:
    """The commands queued in `pipe` (a redis-py pipeline others' code wrote into, rq's say) as one
    MULTI ... EXEC, to send packed; the pipeline is emptied."""
    commands = [("MULTI",), *(args for args, _ in pipe.command_stack), ("EXEC",)]
    pipe.reset()
    return commands


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

    def __init__(self, client: redis.Redis, key: str | None = None, pool=None):
        """`key`: on Redis Cluster, a key of the one slot every command sent is on (or `pool`, the
        connection pool of the node they are all on)."""
        self._pool = pool or pool_for(client, key)
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
