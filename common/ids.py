"""64-bit, time-ordered job ids (FLUID-like) and their printable short form.

Layout: 40 bits of milliseconds since EPOCH, 14 bits of generator number, 10 bits of
sequence. Each generator takes a fresh number from a Redis counter when it starts, so ids
stay unique across restarts of any process that makes them.
"""

from __future__ import annotations

import re
import threading
import time

from jobjournal.common.errors import InvalidJobId
from jobjournal.common.throttle import Throttle

EPOCH_MS = 1_735_689_600_000  # 2025-01-01T00:00:00Z
TS_BITS, GEN_BITS, SEQ_BITS = 40, 14, 10
MAX_GENERATOR = (1 << GEN_BITS) - 1
MAX_SEQ = (1 << SEQ_BITS) - 1
MAX_ID = (1 << 64) - 1
F58_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
F58_PREFIX = "f"


class IdGenerator:
    """Makes ids for one generator number; thread-safe, monotonic even if the clock steps back."""

    def __init__(self, generator: int, clock=time.time):
        if not 0 <= generator <= MAX_GENERATOR:
            raise ValueError(f"generator {generator} out of range")
        self.generator = generator
        self._clock = clock
        self._last_ms = 0
        self._seq = 0
        self._lock = threading.Lock()

    def next_id(self) -> int:
        with self._lock:
            now = max(int(self._clock() * 1000) - EPOCH_MS, self._last_ms)
            if now == self._last_ms:
                self._seq += 1
                if self._seq > MAX_SEQ:
                    now, self._seq = now + 1, 0
            else:
                self._seq = 0
            self._last_ms = now
            return (now << (GEN_BITS + SEQ_BITS)) | (self.generator << SEQ_BITS) | self._seq


def generator_from_redis(redis) -> IdGenerator:
    """An IdGenerator with a generator number no running generator is likely to share."""
    from jobjournal.common import keys

    return IdGenerator(int(redis.incr(keys.id_generator())) % (MAX_GENERATOR + 1))


class RenewedGenerators:
    """Generators for a long-lived process: a new generator number from Redis at most every
    `renew_s` seconds (every request with 0), not one per request. A number is unique only until
    the Redis counter has gone round its 16384 values, and one kept for a process's whole life
    could outlive that."""

    def __init__(self, redis, renew_s: float = 1.0, clock=time.monotonic):
        self._redis = redis
        self._renewal = Throttle(renew_s, clock)
        self._current: IdGenerator | None = None

    def generator(self) -> IdGenerator:
        """The generator to use for one whole request (its ids stay in order)."""
        if self._renewal.due():
            self._current = generator_from_redis(self._redis)
        return self._current


def id_timestamp(job_id: int) -> float:
    """The creation time (seconds since the Unix epoch) encoded in a job id."""
    return ((job_id >> (GEN_BITS + SEQ_BITS)) + EPOCH_MS) / 1000


def f58(job_id: int) -> str:
    """The short printable form of a job id, e.g. 'f2ZzmQ4h'."""
    digits = []
    while True:
        job_id, rem = divmod(job_id, 58)
        digits.append(F58_ALPHABET[rem])
        if job_id == 0:
            break
    return F58_PREFIX + "".join(reversed(digits))


def parse_job_id(text: str) -> int:
    """Accept a job id as f58 ('f...'), decimal, or hexadecimal ('0x...')."""
    text = text.strip()
    try:
        if text.startswith(("f", "ƒ")) and len(text) > 1:
            value = 0
            for char in text[1:]:
                value = value * 58 + F58_ALPHABET.index(char)
        elif re.fullmatch(r"0[xX][0-9a-fA-F]+", text):
            value = int(text, 16)
        elif re.fullmatch(r"[0-9]+", text):
            value = int(text, 10)
        else:
            raise ValueError(text)
    except ValueError as err:
        raise InvalidJobId(f"invalid job id {text!r}") from err
    if not 0 <= value <= MAX_ID:
        raise InvalidJobId(f"invalid job id {text!r}: out of range")
    return value
