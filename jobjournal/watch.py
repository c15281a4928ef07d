"""`jobjournal jobs --watch`: the listing of `jobjournal jobs`, shown again as the journal brings changes.

It follows every partition's journal with blocking reads (`read_journals`, from the heads when
it starts) and lists again only when entries came, at most once every REFRESH_S (the one
Throttle). A gap in a journal (trimmed past the watcher's place) means: list again, from the heads.
On a terminal a table is redrawn in place (rich Live): as many jobs as fit, its clock ticking.
Elsewhere (a pipe, a file) a new table is printed each time the listing changes.
A header line above the table counts the jobs by state (`stats`) and gives the time.
"""

from __future__ import annotations

import contextlib
import os
import string
import time
from collections.abc import Callable, Iterator

import msgspec
from rich import box
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from jobjournal import jobs_format
from jobjournal.common.journal import JournalGap, advance, read_journals
from jobjournal.common.journal import journal_heads as heads
from jobjournal.common.layout import Layout
from jobjournal.common.throttle import Throttle
from jobjournal.lister import query as q

REFRESH_S = 0.25
"""At most one listing every REFRESH_S, however fast entries come."""
BLOCK_MS = 1000
"""How long one journal read waits (a terminal's clock ticks this often)."""
BATCH = 1000
CHROME_LINES = 5
"""Lines a terminal shows besides the jobs' rows: the header line, the table's head and rules."""
PRINT_WIDTH = 200
"""The widest table printed to a non-terminal (without COLUMNS)."""
CELL_SEPARATOR = "\x00"
"""Joins a row's cells into one format: `format_row` escapes control characters in values, so no value holds it."""


class Listing(msgspec.Struct, frozen=True):
    rows: list[dict]
    stats: dict


class WatchSpec(msgspec.Struct, frozen=True):
    """What to watch: the listing `query` (as `jobjournal jobs` builds it), shown with `template`."""

    layout: Layout
    query: q.ListQuery
    template: str
    timeout: float = q.DEFAULT_TIMEOUT
    column_titles: bool = True
    """False: the table without its head (`jobs -n`)."""


def watch(redis, spec: WatchSpec, console: Console | None = None) -> None:
    """Show the listing until Ctrl-C (which ends it quietly); Redis' errors propagate."""
    console = console or _console()
    with contextlib.suppress(KeyboardInterrupt):
        if console.is_terminal:
            _redraw(redis, spec, console)
        else:
            _print_changes(redis, spec, console)


def _console() -> Console:
    console = Console()
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console.width = PRINT_WIDTH
    return console


def _redraw(redis, spec: WatchSpec, console: Console) -> None:
    """A terminal: one table, redrawn in place (and at each idle read, for the clock and run times)."""
    listings = listings_of(redis, spec, lambda: max(1, console.height - CHROME_LINES))
    listing = next(listings)
    with Live(render(listing, spec, time.time()), console=console, auto_refresh=False) as live:
        for fresh in listings:
            listing = fresh or listing
            live.update(render(listing, spec, time.time()), refresh=True)


def _print_changes(redis, spec: WatchSpec, console: Console) -> None:
    """Not a terminal: a new table (and a blank line) each time the listing differs from the last printed."""
    shown = None
    for listing in listings_of(redis, spec):
        if listing is None or listing == shown:
            continue
        console.print(render(listing, spec, time.time()))
        console.print()
        console.file.flush()
        shown = listing


def listings_of(redis, spec: WatchSpec, fit: Callable[[], int] | None = None) -> Iterator[Listing | None]:
    """The listing now, then a new one after each change the journal brings (at most one every
    REFRESH_S), and None for each read that waited BLOCK_MS for nothing. `fit()`: the most rows
    wanted (as many as a terminal shows)."""
    seen: dict = {}  # the generations read last, saving a round trip per query (lister/query.py)
    positions = heads(redis, spec.layout)  # before listing: nothing posted meanwhile is missed
    yield list_now(redis, spec, seen, fit)
    throttle, changed = Throttle(REFRESH_S), False
    throttle.mark()
    while True:
        try:
            entries = read_journals(redis, positions, BATCH, round(REFRESH_S * 1000) if changed else BLOCK_MS)
        except JournalGap:
            positions, entries, changed = heads(redis, spec.layout), [], True
        advance(positions, entries)
        changed = changed or bool(entries)
        if changed and throttle.due():
            changed = False
            yield list_now(redis, spec, seen, fit)
        elif not entries and not changed:
            yield None


def list_now(redis, spec: WatchSpec, seen: dict, fit: Callable[[], int] | None = None) -> Listing:
    query = spec.query
    if fit is not None:
        rows = fit() if not query.max_entries else min(query.max_entries, fit())
        query = msgspec.structs.replace(query, max_entries=rows)
    rows = q.list_jobs(redis, query, timeout=spec.timeout, layout=spec.layout, seen=seen)
    return Listing(rows=rows, stats=q.stats(redis, timeout=spec.timeout, layout=spec.layout, seen=seen))


# -- drawing
def render(listing: Listing, spec: WatchSpec, now: float) -> Group:
    return Group(header_line(listing.stats, now), table(listing.rows, spec.template, now, spec.column_titles))


def header_line(stats: dict, now: float) -> Text:
    """'12:03:04  1 pending, 2 running, 7 inactive  SCHED 1 RUN 2 INACTIVE 7': counts by state, and the time."""
    states = " ".join(f"{name} {count}" for name, count in stats["states"].items() if count)
    clock = time.strftime("%H:%M:%S", time.localtime(now))
    return Text(f"{clock}  {stats['pending']} pending, {stats['running']} running, {stats['inactive']} inactive"
                + (f"  {states}" if states else ""))


def table(rows: list[dict], template: str, now: float, titles: bool = True) -> Table:
    """The rows as a table: a column per field of `template` (its literal text left out)."""
    cells = columns(template)
    shown = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, show_header=titles)
    for title, _, justify in cells:
        shown.add_column(title, justify=justify, no_wrap=True)
    row_format = CELL_SEPARATOR.join(cell for _, cell, _ in cells)
    for row in rows:
        values = jobs_format.format_row(row_format, row, now).split(CELL_SEPARATOR)
        shown.add_row(*(Text(value.strip()) for value in values), *([""] * (len(cells) - len(values))))
    return shown


def columns(template: str) -> list[tuple[str, str, str]]:
    """(title, the field's own format, justification) for each field of a `jobs -o` template."""
    found = []
    for _, field, spec, conversion in string.Formatter().parse(template):
        if field is None:
            continue
        cell = "{" + field + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "") + "}"
        found.append((jobs_format.header(cell).strip(), cell, "right" if ">" in (spec or "") else "left"))
    return found
