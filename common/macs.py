"""Signing with a secret kept in Redis: the one place jobjournal makes and checks HMACs (the
executors' dispatch tokens and reports, manager/exec_dispatch.py; ingest's submission seals,
common/identity.py)."""

from __future__ import annotations

import hashlib
import hmac
import secrets


def shared_secret(redis, key: str) -> bytes:
    """The secret at `key`, created (SET NX) by the first process that asks."""
    redis.set(key, secrets.token_hex(32), nx=True)
    return redis.get(key)


def mac(secret: bytes, content: bytes) -> str:
    """32 hex digits of HMAC-SHA256."""
    return hmac.new(secret, content, hashlib.sha256).hexdigest()[:32]


def matches(secret: bytes, content: bytes, claimed: str) -> bool:
    """Whether `claimed` is the MAC of `content` (compared in constant time)."""
    return hmac.compare_digest(mac(secret, content), claimed or "")
