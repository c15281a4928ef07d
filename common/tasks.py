"""The rq tasks jobjournal enqueues, by the import path rq stores with each task, and their queue.

rq names a task by its function's import path, so a queue outlives a rename: `PREVIOUS` maps
the paths an older jobjournal (before it installed under `jobjournal.`) enqueued to today's, and
`jobjournal worker` serves those too (docs/upgrading.md).

Tasks are stored as JSON (rq's JSONSerializer), never pickled: a worker that unpickled what
anyone with write access to the queue put there would run their code. A worker runs `INGEST`
and `FORWARD` alone; any other function named in a task fails without being called
(manager/rq_worker.py).
Jobs' commands do not go through rq: executors run them (manager/executor.py).
"""

from jobjournal.common import keys

INGEST = "jobjournal.manager.ingest.ingest"
"""Validate a submission, give its jobs ids, hand them to the manager's inbox."""
FORWARD = "jobjournal.manager.forward.forward"
"""Write a person's request (cancel, urgency, raise, purge) to the manager's inbox, which people
may not write with ACLs on (manager/forward.py)."""
WORKER_CLASS = "jobjournal.manager.rq_worker.LeanWorker"
"""The worker class, for rq's own command: `rq worker -w jobjournal.manager.rq_worker.LeanWorker
-S rq.serializers.JSONSerializer`."""

PREVIOUS = {
    "manager.ingest.ingest": INGEST,
}
"""Task paths of jobjournal 0.1 (top-level `manager` package) -> today's."""

RUNNABLE = frozenset({INGEST, FORWARD})


def current_path(func_name: str) -> str:
    """The task path to run for one stored in a queue: today's for an older one, else itself."""
    return PREVIOUS.get(func_name, func_name)


def ingest_queue(connection):
    """rq's ingest queue on `connection` (rq's Redis), with the JSON serializer."""
    from rq import Queue  # imported here: rq adds ~30 ms to the start of commands that do not use it
    from rq.serializers import JSONSerializer

    return Queue(keys.INGEST_QUEUE, connection=connection, serializer=JSONSerializer)
