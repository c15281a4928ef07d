"""Services run the cyclic garbage collector seldom (jobjournal/cli_services.py)."""

from __future__ import annotations

import gc

from jobjournal.cli_services import GC_THRESHOLDS, collect_garbage_seldom


def test_a_service_freezes_what_it_holds_at_start_and_collects_cycles_seldom():
    before = gc.get_threshold()
    try:
        collect_garbage_seldom()
        assert gc.get_threshold() == GC_THRESHOLDS
        assert GC_THRESHOLDS[0] > before[0], "the first generation fills far later than Python's default"
        assert gc.get_freeze_count() > 0, "what the process held at start is out of the collector's passes"
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
