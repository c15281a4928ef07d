"""Settings: one Struct, read from JOBJOURNAL_* environment variables, injectable in tests."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from jobjournal.common.durations import parse_duration
from jobjournal.common.errors import JobJournalError
from jobjournal.common.faults import parse_plan

ENV_PREFIX = "JOBJOURNAL_"

Positive = Annotated[int, Meta(ge=1)]
NonNegative = Annotated[int, Meta(ge=0)]
Seconds = Annotated[float, Meta(ge=0, le=1e9)]
PositiveSeconds = Annotated[float, Meta(gt=0, le=1e9)]


def _default_home() -> str:
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return str(Path(state) / "jobjournal")


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    """Everything configurable. Each field is read from JOBJOURNAL_<FIELD_IN_CAPITALS>."""

    redis_url: str = ""
    """Redis to use (`redis+cluster://host:port` for a Redis Cluster); empty means the embedded
    server under `home`."""
    queue_redis_url: str = ""
    """The Redis of the rq queues (ingest and exec tasks, and their exec keys); empty: the store's
    own, which must then be a standalone server (rq does not run on Redis Cluster)."""
    home: str = msgspec.field(default_factory=_default_home)
    """Directory of the embedded Redis server (data, socket, log)."""
    nodes: Positive = 4
    """Resource pool: number of nodes."""
    cores_per_node: Positive = 8
    """Resource pool: cores on each node."""
    exec_backend: Literal["sim", "process", "rq"] = "sim"
    """How jobs run: 'sim' (simulated) or 'process' (real commands, run by `jobjournal executor`;
    'rq' is its former name)."""
    exec_slots: NonNegative = 0
    """Jobs one executor runs at once (0: as many as the pool has cores, nodes x cores_per_node)."""
    exec_run_as: Literal["executor", "owner"] = "executor"
    """Whose OS user runs a job's command: 'executor' (the executor's own: every job has the
    executor's rights, its Redis credentials included; for one user's jobs) or 'owner' (the job's
    userid, with its groups: the executor must run as root, with identity 'acl'; for several
    people's jobs, docs/guarantees.md "Who a job runs as")."""
    exec_allow_root: bool = False
    """With exec_run_as 'owner': run jobs of uid 0 as root too (by default they end with an
    `exec` exception, as Flux's IMP refuses to switch to root)."""
    output_max_bytes: NonNegative = 1 << 20
    """Most bytes of a job's stdout and stderr kept, together (beyond, they are counted, not kept)."""
    lease_ttl: PositiveSeconds = 5.0
    """Seconds the manager lease lasts without renewal; a standby takes over after it."""
    purge_age_limit: Seconds = 0.0
    """Purge inactive jobs older than this many seconds (0: no age limit)."""
    purge_num_limit: NonNegative = 0
    """Keep at most this many inactive jobs (0: no count limit)."""
    journal_maxlen: NonNegative = 2_000_000
    """Hard, approximate cap on journal entries (0: none); below it the journal is kept only
    from the slowest registered consumer on (see journal_consumer_ttl)."""
    journal_keep_s: Seconds = 10.0
    """Seconds of journal always kept, whatever consumers have read."""
    journal_consumer_ttl: PositiveSeconds = 600.0
    """A consumer that has not reported its cursor for this long holds nothing back."""
    backlog_cache_mb: NonNegative = 256
    """Memory the manager may keep of inactive jobs' eventlogs, so full journals need not read
    them back from Redis (0: read every eventlog each time). About 250 bytes a job (deflated,
    manager/history.py): 256 MB keeps the newest million or so; the manager's memory stays
    bounded however many there are."""
    max_jobspec_bytes: Positive = 65536
    """Largest accepted jobspec document."""
    identity: Literal["trusted", "acl"] = "trusted"
    """Whose requests are whose: 'trusted' believes the uid a request states (every local user is
    trusted); 'acl' takes it from the ACL user that proved the request (common/identity.py)."""
    submit_on_disk_s: Seconds = 0.0
    """More than 0: a submission is acknowledged only once its inbox entry is in Redis' AOF on disk
    (WAITAOF 1 0: Redis 7.2 or newer, appendonly on), waiting at most this many seconds; 0: once it
    is in Redis' memory (then `appendfsync` decides how soon it reaches the disk)."""
    max_request_bytes: Positive = 16 << 20
    """Most bytes of jobspecs (environments included) one submission request may hold, all its
    copies together (a `--cc 10000` with a 10 KB environment is 100 MB)."""
    request_timeout: PositiveSeconds = 30.0
    """Seconds a CLI request waits for the manager or a worker."""
    submit_rate_limit: NonNegative = 0
    """Most jobs one user may submit per second (0: no limit); enforced by ingest workers."""
    rebuild_processes: Positive = 2
    """Processes that share a big view rebuild, the lister worker included: each derives part
    of the full journal (1: the worker alone)."""
    rebuild_split_from: NonNegative = 20_000
    """Jobs from which a rebuild is shared (below, starting a helper costs more than it saves)."""
    query_max_work: Positive = 200_000
    """Most jobs one list query may examine before it fails (CLI default)."""
    partitions: Annotated[int, Meta(ge=1, le=1024)] = 1
    """Partitions of a new store (each a hash tag: a Redis Cluster slot). 1 keeps the legacy layout;
    more are recorded in Redis (`jj:layout`) by the first process that finds the store empty, and
    the record wins over this setting from then on."""
    post_batch_events: Annotated[int, Meta(ge=1, le=100_000)] = 2000
    """Most events one post_events.lua call writes (Redis runs nothing else during a call)."""
    metrics_port: Annotated[int, Meta(ge=0, le=65535)] = 0
    """`jobjournal manager` and `jobjournal lister` serve Prometheus metrics on this port (0: not at all)."""
    metrics_host: str = "127.0.0.1"
    """The address they serve metrics on (the default takes connections from this machine alone)."""
    fault: str = ""
    """For tests: stop the process at a named point ("<point>@<n>[:exit|stop|raise]", common/faults.py)."""


DURATIONS = frozenset({"lease_ttl", "purge_age_limit", "journal_keep_s", "journal_consumer_ttl", "request_timeout",
                       "submit_on_disk_s"})
"""Settings that are durations: an RFC 23 duration ('30s', '1.5m', '2d') or plain seconds."""


def _seconds(value):
    """An RFC 23 duration text as seconds; anything else as it is (the Struct then says what is wrong)."""
    if not isinstance(value, str):
        return value
    try:
        return parse_duration(value)
    except ValueError:
        return value


def load_settings(environ: Mapping[str, str] | None = None, **overrides) -> Settings:
    """Read Settings from the environment (os.environ by default), then apply overrides."""
    environ = os.environ if environ is None else environ
    fields = Settings.__struct_fields__
    unknown = sorted(set(overrides) - set(fields))
    if unknown:
        raise JobJournalError(f"unknown setting {unknown[0]!r}")
    raw = {
        name[len(ENV_PREFIX) :].lower(): value
        for name, value in environ.items()
        if name.startswith(ENV_PREFIX) and name[len(ENV_PREFIX) :].isupper()
        and name[len(ENV_PREFIX) :].lower() in fields
    }
    raw.update(overrides)
    for name in DURATIONS.intersection(raw):
        raw[name] = _seconds(raw[name])
    try:
        settings = msgspec.convert(raw, Settings, strict=False)
    except msgspec.ValidationError as err:
        field = re.search(r"at `\$\.(\w+)`", str(err))
        where = f"{ENV_PREFIX}{field.group(1).upper()}" if field else f"{ENV_PREFIX}<FIELD>"
        raise JobJournalError(f"bad setting {where}: {str(err).partition(' - at ')[0]}") from err
    parse_plan(settings.fault)  # a mistyped fault fails here, not silently never
    return settings
