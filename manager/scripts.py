"""The manager's Lua scripts, loaded once per client as redis-py Script objects."""

from __future__ import annotations

from importlib import resources


def _source(name: str) -> str:
    return resources.files("jobjournal.manager").joinpath("lua", f"{name}.lua").read_text()


class Scripts:
    """Script objects bound to one client; call them with `client=` a pipeline if needed."""

    def __init__(self, redis):
        self.post_events = redis.register_script(_source("post_events"))
        self.purge_jobs = redis.register_script(_source("purge_jobs"))
        self.append_reply = redis.register_script(_source("append_reply"))
