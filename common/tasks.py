"""The rq tasks jobjournal enqueues, by the import path rq stores with each task.

rq names a task by its function's import path, so a queue outlives a rename: `PREVIOUS` maps
the paths an older jobjournal (before it installed under `jobjournal.`) enqueued to today's, and
`jobjournal worker` serves those too (docs/upgrading.md).
"""

INGEST = "jobjournal.manager.ingest.ingest"
"""Validate a submission, give its jobs ids, hand them to the manager's inbox."""
EXEC = "jobjournal.manager.exec_task.run_job"
"""Run one job's command (the `rq` exec backend)."""
WORKER_CLASS = "jobjournal.manager.rq_worker.LeanWorker"
"""The worker class, for rq's own command: `rq worker -w jobjournal.manager.rq_worker.LeanWorker`."""

PREVIOUS = {
    "manager.ingest.ingest": INGEST,
    "manager.exec_task.run_job": EXEC,
}
"""Task paths of jobjournal 0.1 (top-level `manager` package) -> today's."""


def current_path(func_name: str) -> str:
    """The task path to run for one stored in a queue: today's for an older one, else itself."""
    return PREVIOUS.get(func_name, func_name)
