"""Loading and running jobjournal's Lua scripts: the one script runner.

Each script is a `.lua` file in its package's `lua/` folder, with a header naming its KEYS and
ARGV. A `Script` names one; `run_script` calls it with EVALSHA, its arguments packed by hand
(scripts are called with thousands of arguments), loads it when Redis lacks it, and maps the
errors every writing script shares to one exception each:

- `NOTLEADER ...`: the caller's lease token is not the lease's -> `LeaseLost`;
- `STALE ...`: the view is not at the seq the batch follows -> `StaleView`.

Any other error reply stays a redis ResponseError (its first word names it).
"""

from __future__ import annotations

import hashlib
from functools import cached_property
from importlib import resources

import redis as redis_lib
from redis.exceptions import NoScriptError

from jobjournal.common.errors import JobJournalError, LeaseLost, StaleView
from jobjournal.common.packed import execute_packed, pack

MAPPED_ERRORS: dict[str, type[JobJournalError]] = {"NOTLEADER": LeaseLost, "STALE": StaleView}
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


def run_script(client: redis_lib.Redis, script: Script, keys: list, args: list):
    """Run `script` with its KEYS and ARGV; its reply. Raises LeaseLost or StaleView for their
    error replies (MAPPED_ERRORS), ResponseError for any other."""
    command = pack(("EVALSHA", script.sha, len(keys), *keys, *args))
    key = keys[0] if keys else None
    try:
        try:
            [reply] = execute_packed(client, [command], key)
        except NoScriptError:  # a new or flushed Redis (or, on a cluster, a node that lacks it)
            execute_packed(client, [pack(("SCRIPT", "LOAD", script.source))], key)
            [reply] = execute_packed(client, [command], key)
    except redis_lib.ResponseError as err:
        mapped = MAPPED_ERRORS.get(str(err).partition(" ")[0])
        if mapped is not None:
            raise mapped(str(err)) from err
        raise
    return reply
