"""Loading and running jobjournal's Lua scripts: the one script runner.

Each script is a `.lua` file in its package's `lua/` folder, with a header naming its KEYS and
ARGV. A `Script` names one; `run_script` calls it with EVALSHA, its arguments packed by hand
(scripts are called with thousands of arguments), loads it when Redis lacks it, and maps the
errors every writing script shares to one exception each:

- `NOTLEADER ...`: the caller's lease token is not the lease's -> `LeaseLost`;
- `NOTBUILDING ...`: the generation a chunk is for is no longer being built -> `LeaseLost`;
- `STALE ...`: the view is not at the seq the batch follows -> `StaleView`.

On Redis Cluster a `MOVED` reply (the slot moved since the client read the slot table; the script
did not run) refreshes the table and runs the call once more on the slot's node. Any other error
reply stays a redis ResponseError (its first word names it).
"""

from __future__ import annotations

import hashlib
from functools import cached_property
from importlib import resources

import redis as redis_lib
from redis.exceptions import NoScriptError

from jobjournal.common.errors import JobJournalError, LeaseLost, StaleView
from jobjournal.common.packed import Pending, execute_packed, pack, pool_for, refreshed_after

MAPPED_ERRORS: dict[str, type[JobJournalError]] = {"NOTLEADER": LeaseLost, "NOTBUILDING": LeaseLost, "STALE": StaleView}
"""An error reply's first word -> the exception it raises."""


class Script:
    """One Lua script of a package (`jobjournal.manager`, ...), read when first used."""

    def __init__(self, package: str, name: str):
        self.package = package
        self.name = name

    @cached_property
    def source(self) -> str:
        return resources.files(self.package).joinpath("lua", f"{self.name}.lua").read_text()

    @cached_property
    def sha(self) -> str:
        return hashlib.sha1(self.source.encode()).hexdigest()

    def __repr__(self) -> str:
        return f"Script({self.package!r}, {self.name!r})"


def run_scripts(client: redis_lib.Redis, calls: list[tuple[Script, list, list]]) -> list:
    """Several script calls, each on its own keys' slot, in one round trip per node (in order on
    each node): a step's calls on every partition go to their masters at once. Their replies in
    order; errors as run_script's (the first one raised once every reply is read)."""
    if len(calls) == 1:
        return [run_script(client, *calls[0])]
    by_node: dict[int, list[int]] = {}
    for index, (_, keys, _) in enumerate(calls):
        by_node.setdefault(id(pool_for(client, keys[0])), []).append(index)
    replies: list = [None] * len(calls)
    for indexes in by_node.values():
        commands = [pack(("EVALSHA", calls[i][0].sha, len(calls[i][1]), *calls[i][1], *calls[i][2])) for i in indexes]
        with Pending(client, calls[indexes[0]][1][0]) as pending:
            pending.send(commands)
            for index, reply in zip(indexes, pending.replies(raise_errors=False), strict=True):
                replies[index] = reply
    moved = [index for index, reply in enumerate(replies) if isinstance(reply, redis_lib.exceptions.MovedError)]
    if moved and refreshed_after(client, replies[moved[0]]):  # one refresh of the slot table for the batch
        for index in moved:
            replies[index] = run_script(client, *calls[index])  # on the node that holds its slot now
    for index, reply in enumerate(replies):
        if isinstance(reply, NoScriptError):  # a new or flushed node: run that call alone, loading it
            replies[index] = run_script(client, *calls[index])
    for reply in replies:
        if isinstance(reply, redis_lib.ResponseError):
            raise mapped_error(reply) from reply
    return replies


def mapped_error(err: redis_lib.ResponseError) -> Exception:
    """The exception a script's error reply stands for (MAPPED_ERRORS), or `err` itself."""
    mapped = MAPPED_ERRORS.get(str(err).partition(" ")[0])
    return mapped(str(err)) if mapped is not None else err


def script_call(script: Script, keys: list, args: list) -> bytes:
    """One call of `script`, packed, for a caller that sends it with others (`Pending`): the
    script must be loaded on that node first (`load_script`); its error reply is read as
    `mapped_error`'s."""
    return pack(("EVALSHA", script.sha, len(keys), *keys, *args))


def load_script(client: redis_lib.Redis, script: Script, key: str | None = None) -> None:
    """Load `script` on the node of `key`'s slot (the client's server when standalone)."""
    execute_packed(client, [pack(("SCRIPT", "LOAD", script.source))], key)


def run_script(client: redis_lib.Redis, script: Script, keys: list, args: list):
    """Run `script` with its KEYS and ARGV; its reply. Raises LeaseLost or StaleView for their
    error replies (MAPPED_ERRORS), ResponseError for any other."""
    command = script_call(script, keys, args)
    key = keys[0] if keys else None
    try:
        try:
            return _run_loading(client, script, command, key)
        except redis_lib.ResponseError as err:
            if not refreshed_after(client, err):
                raise
            return _run_loading(client, script, command, key)
    except redis_lib.ResponseError as err:
        mapped = mapped_error(err)
        if mapped is not err:
            raise mapped from err
        raise


def _run_loading(client: redis_lib.Redis, script: Script, command: bytes, key: str | None):
    try:
        [reply] = execute_packed(client, [command], key)
    except NoScriptError:  # a new or flushed Redis (or, on a cluster, a node that lacks it)
        load_script(client, script, key)
        [reply] = execute_packed(client, [command], key)
    return reply
