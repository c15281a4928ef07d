"""Doing something at most once every so many seconds."""

from __future__ import annotations

import time


class Throttle:
    """`due()` is true at most once every `seconds` (always when `seconds` is 0), first at once."""

    def __init__(self, seconds: float, clock=time.monotonic):
        self.seconds = seconds
        self._clock = clock
        self._last = float("-inf")

    def due(self) -> bool:
        now = self._clock()
        if now - self._last < self.seconds:
            return False
        self._last = now
        return True
