"""jobjournal: a job manager and job lister that share one truth, kept in Redis Streams.

The installed package holds the command line (`jobjournal.cli`, this folder) and three
subpackages mapped from the source folders: `jobjournal.common` (common/), `jobjournal.manager`
(manager/) and `jobjournal.lister` (lister/). The Python API, importable from here:

- submitting and changing jobs: `submit`, `cancel`, `set_urgency`, `raise_exception`, `purge`,
  `eventlog`, `follow_eventlog` (jobjournal.manager.client);
- following everything: `follow_full_journal` (jobjournal.common.full_journal);
- querying the lister's view: `list_jobs`, `list_id`, `stats`, `ListQuery` (jobjournal.lister.query);
- connecting: `connect`, `load_settings`.

Names are imported on first use, so `import jobjournal` costs nothing.
"""

from __future__ import annotations

import importlib

_API = {
    "submit": "jobjournal.manager.client",
    "cancel": "jobjournal.manager.client",
    "set_urgency": "jobjournal.manager.client",
    "raise_exception": "jobjournal.manager.client",
    "purge": "jobjournal.manager.client",
    "eventlog": "jobjournal.manager.client",
    "follow_eventlog": "jobjournal.manager.client",
    "follow_full_journal": "jobjournal.common.full_journal",
    "list_jobs": "jobjournal.lister.query",
    "list_id": "jobjournal.lister.query",
    "stats": "jobjournal.lister.query",
    "ListQuery": "jobjournal.lister.query",
    "connect": "jobjournal.common.connection",
    "load_settings": "jobjournal.common.settings",
}
__all__ = sorted(_API)


def __getattr__(name: str):
    module = _API.get(name)
    if module is None:
        raise AttributeError(f"module 'jobjournal' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return sorted([*globals(), *_API])
