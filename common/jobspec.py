"""The jobspec: a small, validated subset of RFC 14, and its redaction.

Validation errors name the bad field (`$.ntasks`). What leaves the manager is redacted:
`redact()` drops the environment.
"""

from __future__ import annotations

from typing import Annotated

import msgspec
from msgspec import Meta

from jobjournal.common.errors import InvalidJobspec

JOBSPEC_VERSION = 1
MAX_COUNT = 1_000_000
MAX_DURATION = 365 * 24 * 3600.0

Count = Annotated[int, Meta(ge=1, le=MAX_COUNT)]
Seconds = Annotated[float, Meta(ge=0, le=MAX_DURATION)]
Urgency = Annotated[int, Meta(ge=0, le=31)]
ShortText = Annotated[str, Meta(max_length=256)]
Path = Annotated[str, Meta(max_length=4096)]
Argument = Annotated[str, Meta(max_length=65536)]
EnvName = Annotated[str, Meta(min_length=1, max_length=1024, pattern=r"^[^=\x00]+$")]

URGENCY_HOLD = 0
URGENCY_DEFAULT = 16
URGENCY_EXPEDITE = 31


class SimSpec(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """How the `sim` exec backend plays the job: its runtime and exit code."""

    runtime: Seconds = 0.0
    exit_code: Annotated[int, Meta(ge=0, le=255)] = 0


class Jobspec(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True, kw_only=True, gc=False):
    """What a user asks for. `duration` is the time limit in seconds (0: none)."""

    command: Annotated[list[Argument], Meta(min_length=1, max_length=4096)]
    ntasks: Count = 1
    nodes: Count | None = None
    cores_per_task: Count = 1
    duration: Seconds = 0.0
    cwd: Path = ""
    queue: ShortText = "default"
    name: ShortText = ""
    environment: dict[EnvName, Annotated[str, Meta(max_length=65536)]] = {}
    urgency: Urgency = URGENCY_DEFAULT
    sim: SimSpec | None = None
    version: int = JOBSPEC_VERSION

    def __post_init__(self):
        if self.version != JOBSPEC_VERSION:
            raise ValueError(f"unsupported jobspec version {self.version} - at `$.version`")
        if not self.command[0]:
            raise ValueError("empty command - at `$.command[0]`")
        if self.nodes is not None and self.nodes > self.ntasks:
            raise ValueError("more nodes than tasks - at `$.nodes`")

    @property
    def job_name(self) -> str:
        """The name given, else the command's basename, else (a path ending in '/') the whole
        first argument, as Flux's job-list names jobs."""
        return self.name or self.command[0].rsplit("/", 1)[-1] or self.command[0]

    @property
    def ncores(self) -> int:
        return self.ntasks * self.cores_per_task


_decoder = msgspec.json.Decoder(Jobspec)
_environment_decoder = msgspec.json.Decoder(dict[str, str])


def decode_environment(data: bytes) -> dict[str, str]:
    """A job's environment from its environment key (JSON; written by the manager at submit)."""
    return _environment_decoder.decode(data)


def decode_jobspec(data: bytes) -> Jobspec:
    """A jobspec from JSON jobjournal wrote itself (an eventlog's redacted jobspec): msgspec's
    errors as they are. Bad input from users goes through parse_jobspec."""
    return _decoder.decode(data)


def parse_jobspec(data: bytes | str, max_bytes: int = 65536) -> Jobspec:
    """Decode and validate a jobspec document (JSON)."""
    if isinstance(data, str):
        data = data.encode()
    if len(data) > max_bytes:
        raise InvalidJobspec(f"invalid jobspec: {len(data)} bytes is more than the limit of {max_bytes}")
    try:
        return _decoder.decode(data)
    except (msgspec.ValidationError, msgspec.DecodeError) as err:
        raise InvalidJobspec(f"invalid jobspec: {err}") from err


def make_jobspec(**fields) -> Jobspec:
    """Build a validated jobspec from Python values (the CLI and API path)."""
    try:
        return msgspec.convert(fields, Jobspec)
    except msgspec.ValidationError as err:
        raise InvalidJobspec(f"invalid jobspec: {err}") from err


def redact(jobspec: Jobspec) -> Jobspec:
    """The jobspec as it may leave the manager: without the environment."""
    return msgspec.structs.replace(jobspec, environment={})


def encode(jobspec: Jobspec) -> bytes:
    return msgspec.json.encode(jobspec)
