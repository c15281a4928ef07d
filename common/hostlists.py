"""RFC 29 hostlists, read: 'node[0-3,7],login1' names node0..node3, node7 and login1.

A hostlist is a comma-separated list of entries (commas inside brackets separate ranges); an entry
is a name, or a prefix, one bracketed RFC 22 idset and an optional suffix. Zero-padded bounds
('node[01-10]') name zero-padded hosts of that width. Patterns are matched without expanding them,
so a constraint like 'node[0-4294967295]' costs no memory; `expand` (for a job's own nodes) is
bounded. `common/resources.py` `hostlist` writes them.
"""

from __future__ import annotations

import re

MAX_ENTRIES = 1024
_ENTRY = re.compile(r"([^\[\]]*)(?:\[([0-9,\-]+)\]([^\[\]]*))?")
_RANGE = re.compile(r"(\d{1,18})(?:-(\d{1,18}))?")


class HostlistError(ValueError):
    """Not an RFC 29 hostlist."""


class Pattern:
    """One entry: a literal name, or prefix + numbered ranges + suffix."""

    def __init__(self, prefix: str, ranges: list[tuple[int, int, int]] | None = None, suffix: str = ""):
        self.prefix, self.ranges, self.suffix = prefix, ranges, suffix

    def matches(self, host: str) -> bool:
        if self.ranges is None:
            return host == self.prefix
        end = len(host) - len(self.suffix)
        if end <= len(self.prefix) or not (host.startswith(self.prefix) and host.endswith(self.suffix)):
            return False
        middle = host[len(self.prefix) : end]
        if not middle.isdigit():
            return False
        number = int(middle)
        return any(low <= number <= high and _width_fits(middle, width) for low, high, width in self.ranges)

    def hosts(self):
        if self.ranges is None:
            yield self.prefix
            return
        for low, high, width in self.ranges:
            for number in range(low, high + 1):
                yield f"{self.prefix}{number:0{width}d}{self.suffix}"


def _width_fits(digits: str, width: int) -> bool:
    """Written as `hosts` writes the number: zero-padded to `width` (0: not padded)."""
    return digits == f"{int(digits):0{width}d}"


def parse(text: str) -> list[Pattern]:
    """The entries of a hostlist; HostlistError (saying where) if it is not one."""
    if not isinstance(text, str) or not text.strip():
        raise HostlistError(f"{text!r:.60} is not a hostlist")
    patterns = [_entry(entry, text) for entry in _split(text)]
    if len(patterns) > MAX_ENTRIES:
        raise HostlistError(f"hostlist of more than {MAX_ENTRIES} entries")
    return patterns


def expand(text: str, limit: int = 100_000) -> list[str]:
    """Every host a hostlist names (at most `limit`, else HostlistError)."""
    hosts: list[str] = []
    for pattern in parse(text):
        for host in pattern.hosts():
            hosts.append(host)
            if len(hosts) > limit:
                raise HostlistError(f"hostlist names more than {limit} hosts")
    return hosts


def _split(text: str) -> list[str]:
    entries, depth, start = [], 0, 0
    for index, char in enumerate(text):
        depth += char == "["
        depth -= char == "]"
        if depth not in (0, 1):
            raise HostlistError(f"unbalanced brackets in hostlist {text!r:.60}")
        if char == "," and depth == 0:
            entries.append(text[start:index])
            start = index + 1
    if depth:
        raise HostlistError(f"unbalanced brackets in hostlist {text!r:.60}")
    entries.append(text[start:])
    return [entry.strip() for entry in entries]


def _entry(entry: str, text: str) -> Pattern:
    match = _ENTRY.fullmatch(entry)
    if not entry or match is None:
        raise HostlistError(f"bad entry {entry!r:.40} in hostlist {text!r:.60}")
    prefix, ranges, suffix = match.groups()
    if ranges is None:
        return Pattern(prefix)
    return Pattern(prefix, [_range(part, text) for part in ranges.split(",")], suffix)


def _range(part: str, text: str) -> tuple[int, int, int]:
    match = _RANGE.fullmatch(part)
    if match is None:
        raise HostlistError(f"bad range {part!r:.30} in hostlist {text!r:.60}")
    low_text, high_text = match.group(1), match.group(2) or match.group(1)
    low, high = int(low_text), int(high_text)
    if high < low:
        raise HostlistError(f"range {part!r:.30} runs backwards in hostlist {text!r:.60}")
    width = len(low_text) if low_text.startswith("0") and len(low_text) > 1 else 0
    return low, high, width
