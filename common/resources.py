"""R, the resource set of an allocation (a subset of RFC 20), and RFC 22 idsets."""

from __future__ import annotations

from functools import lru_cache

import msgspec

R_VERSION = 1


class RLite(msgspec.Struct, gc=False):
    rank: str
    """Idset of ranks sharing the same children."""
    children: dict[str, str]
    """Resource type to idset, e.g. {"core": "0-3"}."""


class Execution(msgspec.Struct, kw_only=True, gc=False):
    R_lite: list[RLite]
    nodelist: list[str]
    starttime: float = 0.0
    expiration: float = 0.0
    """0: no time limit."""


class R(msgspec.Struct, kw_only=True, gc=False):
    """Not tracked by the garbage collector (none of these structs can be part of a cycle):
    decoding one per job is a rebuild's hot path."""

    version: int = R_VERSION
    execution: Execution

    @property
    def ranks(self) -> list[int]:
        return sorted({rank for entry in self.execution.R_lite for rank in decode_idset(entry.rank)})

    @property
    def rank_idset(self) -> tuple[str, int]:
        """The ranks as one idset, and how many there are."""
        entries = self.execution.R_lite
        if len(entries) == 1:
            return idset_summary(entries[0].rank)
        ranks = self.ranks
        return encode_idset(ranks), len(ranks)

    @property
    def ncores(self) -> int:
        total = 0
        for entry in self.execution.R_lite:
            total += idset_summary(entry.rank)[1] * idset_summary(entry.children.get("core", ""))[1]
        return total


_decoder = msgspec.json.Decoder(R)


def decode_R(data: bytes) -> R:  # noqa: N802 - R is RFC 20's name
    """R from its JSON form (msgspec's errors as they are)."""
    return _decoder.decode(data)


def encode_idset(ids) -> str:
    """Compress integers into RFC 22 form: '0-3,5,7-8'."""
    ordered = sorted(set(ids))
    parts: list[str] = []
    start = prev = None
    for value in ordered:
        if prev is not None and value == prev + 1:
            prev = value
            continue
        if start is not None:
            parts.append(_range(start, prev))
        start = prev = value
    if start is not None:
        parts.append(_range(start, prev))
    return ",".join(parts)


def decode_idset(text: str) -> list[int]:
    return [value for low, high in idset_ranges(text) for value in range(low, high + 1)]


def idset_ranges(text: str) -> list[tuple[int, int]]:
    """An RFC 22 idset as (low, high) ranges, without expanding it; ValueError if it is not one."""
    ranges = []
    for part in filter(None, text.split(",")):
        low, _, high = part.partition("-")
        ranges.append((int(low), int(high or low)))
    if any(low < 0 or high < low for low, high in ranges):
        raise ValueError(f"{text!r:.60} is not an idset")
    return ranges


@lru_cache(maxsize=4096)
def idset_summary(text: str) -> tuple[str, int]:
    """An idset in canonical form, and how many ids it holds (remembered: R repeats them)."""
    ids = set(decode_idset(text))
    return encode_idset(ids), len(ids)


def _range(start: int, end: int) -> str:
    return str(start) if start == end else f"{start}-{end}"


def hostlist(names: list[str], prefix: str = "node") -> str:
    """Compress node names that share `prefix` into one hostlist, e.g. 'node[0-2,5]'."""
    numbers = [int(name[len(prefix) :]) for name in names]
    return f"{prefix}{numbers[0]}" if len(numbers) == 1 else f"{prefix}[{encode_idset(numbers)}]"


def make_R(allocation: dict[int, list[int]], starttime: float, duration: float) -> R:
    """R for an allocation mapping rank to its cores."""
    by_cores: dict[str, list[int]] = {}
    for rank, cores in sorted(allocation.items()):
        by_cores.setdefault(encode_idset(cores), []).append(rank)
    r_lite = [  # by_cores' rank lists are sorted, and in the order of their first ranks
        RLite(rank=encode_idset(ranks), children={"core": cores}) for cores, ranks in by_cores.items()
    ]
    ranks = sorted(allocation)
    return R(
        execution=Execution(
            R_lite=r_lite,
            nodelist=[hostlist([f"node{rank}" for rank in ranks])],
            starttime=starttime,
            expiration=starttime + duration if duration else 0.0,
        )
    )
