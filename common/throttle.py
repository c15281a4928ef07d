"""Doing something at most once every so many seconds: the one throttle every periodic task uses."""

from __future__ import annotations

import time
from collections.abc import Callable


class Throttle:
    """`due()` is true at most once every `seconds` (always when `seconds` is 0), first at once.

    `clock` is any function giving seconds (time.monotonic by default; a manager passes its own
    wall clock, tests a fake one)."""

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic):
        self.seconds = seconds
        self._clock = clock
        self._last = float("-inf")

    def due(self) -> bool:
        """True (and counted as done now) if `seconds` have passed since it was last done."""
        now = self._clock()
        if now - self._last < self.seconds:
            return False
        self._last = now
        return True

    def mark(self) -> None:
        """Count it as done now (it was done by other means: a lease taken is a lease renewed)."""
        self._last = self._clock()

    def reset(self) -> None:
        """Make the next `due()` true."""
        self._last = float("-inf")
