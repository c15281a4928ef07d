"""Progress bars on stderr for long CLI work: a query waiting for a view still being built, a large
purge, a large submission. Only when stderr is a terminal, and only for work that lasts past
SHOW_AFTER_S (a quick command shows nothing). Each bar shows what Redis says, never a guess: a count
and its total where Redis knows both, a count alone, or just a spinner and the time waited.

rich's progress module is imported only when a bar is drawn: commands that draw none do not load it.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator

import redis as redis_lib

from jobjournal.common.keys import Partition
from jobjournal.common.layout import Layout, read_layout
from jobjournal.common.packed import reads
from jobjournal.lister.progress import partition_progress

SHOW_AFTER_S = 0.5
"""Work done sooner shows no bar."""
POLL_S = 0.2
"""How often a bar asks Redis how far the work has got."""
SUBMIT_BAR_FROM = 100
"""A submission of this many jobs (--cc) or more shows a spinner while it waits for its ids."""

Measure = Callable[[], tuple[int | None, int | None]]
"""(done, total) as Redis says them now; None for what it does not know."""


def stderr_is_terminal() -> bool:
    from rich.console import Console

    return Console(stderr=True).is_terminal


@contextlib.contextmanager
def progress_while(description: str, measure: Measure | None = None) -> Iterator[None]:
    """While the block runs, a bar on stderr (from SHOW_AFTER_S on, gone when it ends) that
    `measure()`, called every POLL_S in a thread of its own, keeps up to date; a spinner alone
    without `measure`. Nothing when stderr is not a terminal. The block runs in the calling
    thread, so Ctrl-C and errors reach it as without a bar."""
    if not stderr_is_terminal():
        yield
        return
    stop = threading.Event()
    drawer = threading.Thread(target=_draw, args=(description, measure, stop, time.monotonic()), daemon=True)
    drawer.start()
    try:
        yield
    finally:
        stop.set()
        drawer.join()


def _draw(description: str, measure: Measure | None, stop: threading.Event, began: float) -> None:
    if stop.wait(SHOW_AFTER_S):
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn

    counted = [BarColumn(), MofNCompleteColumn()] if measure is not None else []
    columns = [SpinnerColumn(), TextColumn("{task.description}"), *counted, TextColumn("{task.fields[waited]}")]
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(description, **_task_fields(measure, began))
        while not stop.wait(POLL_S):
            bar.update(task, **_task_fields(measure, began))


def _task_fields(measure: Measure | None, began: float) -> dict:
    """A bar's fields now: done and total as `measure` says (nothing known when it cannot read: the
    work itself reports Redis' errors), and the time waited."""
    done, total = None, None
    if measure is not None:
        with contextlib.suppress(redis_lib.RedisError):
            done, total = measure()
    return {"completed": done or 0, "total": total, "waited": f"{time.monotonic() - began:.0f}s"}


# -- what the bars measure
def unbuilt_partitions(redis, layout: Layout) -> list[Partition]:
    """The partitions that have no complete view yet (one round trip)."""
    currents = reads(redis, [("GET", part.view_current()) for part in layout.partitions])
    return [part for part, current in zip(layout.partitions, currents, strict=True) if current is None]


def view_build_measure(redis, layout: Layout, building: list[Partition]) -> Measure:
    """How far the first build of the views of `building` has got, as `partition_progress` says:
    the jobs loaded of the jobs those partitions hold (all of a partition's once its view is there)."""
    indexes = {part.index for part in building}

    def measure() -> tuple[int | None, int | None]:
        found = [part for part in partition_progress(redis, layout) if part.index in indexes]
        loaded = sum(part.jobs if part.applied is not None else (part.building or 0) for part in found)
        return loaded, sum(part.jobs for part in found)

    return measure


def purged_measure(redis, layout: Layout, total: int | None) -> Measure:
    """The jobs purged since now (every partition's journal head counts those it purged), of `total`."""

    def purged_ever() -> int:
        return sum(int(count or 0) for count in reads(redis, [("HGET", part.journal_head(), "purged")
                                                             for part in layout.partitions]))

    before = purged_ever()
    return lambda: (purged_ever() - before, total)


@contextlib.contextmanager
def waiting_for_view(redis, layout: Layout) -> Iterator[None]:
    """Around a query: a bar of the first build's progress if a view is still being built (on a
    terminal; elsewhere the query waits silently, as it always did)."""
    building = unbuilt_partitions(redis, layout) if stderr_is_terminal() else []
    if not building:
        yield
        return
    with progress_while("building the job view", view_build_measure(redis, layout, building)):
        yield


def purging(redis, total: int | None) -> contextlib.AbstractContextManager:
    """Around a purge request: the jobs purged so far (of `total`, when the caller knows it); a
    spinner alone for a role that may not read the journal heads."""
    if not stderr_is_terminal():
        return contextlib.nullcontext()
    try:
        measure = purged_measure(redis, read_layout(redis), total)
    except redis_lib.exceptions.NoPermissionError:
        measure = None
    return progress_while("purging inactive jobs", measure)


def submitting(count: int) -> contextlib.AbstractContextManager:
    """Around a submission of `count` jobs (one request: the ids come all at once): a spinner from
    SUBMIT_BAR_FROM jobs on."""
    if count < SUBMIT_BAR_FROM:
        return contextlib.nullcontext()
    return progress_while(f"submitting {count} jobs")
