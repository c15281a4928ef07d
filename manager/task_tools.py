"""What an rq task of jobjournal works with: the settings, the store, and an id generator.

rq calls a task with its own arguments only, and gives it the connection of the queue it came from
(rq's Redis). A long-lived `jobjournal worker` (manager/rq_worker.py) makes its tools once and runs
every task with them; on a plain `rq worker`, each task makes its own from the environment.

The store (manager inbox, job ids) and rq's Redis are the same server unless the store is elsewhere
(a Redis Cluster, on which rq cannot run: settings `redis_url` and `queue_redis_url`).
"""

from __future__ import annotations

from typing import NamedTuple

from jobjournal.common import identity, inbox
from jobjournal.common.connection import connect
from jobjournal.common.errors import JobJournalError
from jobjournal.common.ids import RenewedGenerators
from jobjournal.common.settings import Settings, load_settings


class WorkerTools(NamedTuple):
    settings: Settings
    store: object
    """A client of the store."""
    ids: RenewedGenerators
    seal_key: bytes
    """The key this worker seals submissions with (common/identity.py)."""


def worker_tools(settings: Settings, queues, renew_s: float = 1.0) -> WorkerTools:
    """The tools of a worker whose rq connection is `queues`."""
    store = store_for(settings, queues)
    if settings.submit_on_disk_s:
        refusal = inbox.on_disk_refusal(store)
        if refusal:
            raise JobJournalError(refusal)
    return WorkerTools(settings, store, RenewedGenerators(store, renew_s=renew_s), identity.ingest_key(store))


def task_tools(queues) -> WorkerTools:
    """The tools of a task on a plain rq worker: the environment's settings, and a generator
    number per task."""
    return worker_tools(load_settings(), queues, renew_s=0)


def store_for(settings: Settings, queues):
    """The store's client: rq's own connection when the store is the same server (or is not
    configured: a plain rq worker started with only `-u`), else a connection of its own."""
    if not settings.redis_url or not settings.queue_redis_url or settings.redis_url == settings.queue_redis_url:
        return queues
    return connect(settings)
