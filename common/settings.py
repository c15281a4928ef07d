"""Settings: one Struct, read from JOBJOURNAL_* environment variables, injectable in tests."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import msgspec

ENV_PREFIX = "JOBJOURNAL_"


def _default_home() -> str:
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return str(Path(state) / "jobjournal")


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    """Everything configurable. Each field is read from JOBJOURNAL_<FIELD_IN_CAPITALS>."""

    redis_url: str = ""
    """Redis to use; empty means the embedded server under `home`."""
    home: str = msgspec.field(default_factory=_default_home)
    """Directory of the embedded Redis server (data, socket, log)."""
    nodes: int = 4
    """Resource pool: number of nodes."""
    cores_per_node: int = 8
    """Resource pool: cores on each node."""
    exec_backend: str = "sim"
    """How jobs run: 'sim' (simulated) or 'rq' (real commands on rq workers)."""
    lease_ttl: float = 5.0
    """Seconds the manager lease lasts without renewal; a standby takes over after it."""
    purge_age_limit: float = 0.0
    """Purge inactive jobs older than this many seconds (0: no age limit)."""
    purge_num_limit: int = 0
    """Keep at most this many inactive jobs (0: no count limit)."""
    journal_maxlen: int = 1_000_000
    """Approximate cap on journal entries (0: uncapped)."""
    max_jobspec_bytes: int = 65536
    """Largest accepted jobspec document."""
    request_timeout: float = 30.0
    """Seconds a CLI request waits for the manager or a worker."""


def load_settings(environ: Mapping[str, str] | None = None, **overrides) -> Settings:
    """Read Settings from the environment (os.environ by default), then apply overrides."""
    environ = os.environ if environ is None else environ
    raw = {
        name[len(ENV_PREFIX) :].lower(): value
        for name, value in environ.items()
        if name.startswith(ENV_PREFIX) and name[len(ENV_PREFIX) :].lower() in Settings.__struct_fields__
    }
    raw.update(overrides)
    try:
        return msgspec.convert(raw, Settings, strict=False)
    except msgspec.ValidationError as err:
        from common.errors import JobJournalError

        raise JobJournalError(f"bad setting: {err}") from err
