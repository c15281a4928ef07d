"""The manager's Lua scripts (manager/lua/), run with common.scripts.run_script."""

from jobjournal.common.scripts import Script

POST_EVENTS = Script("jobjournal.manager", "post_events")
"""Append a batch of events to their eventlogs and the journal, with the inbox cursor."""
PURGE_JOBS = Script("jobjournal.manager", "purge_jobs")
"""Remove inactive jobs and post a purge entry for each."""
APPEND_REPLY = Script("jobjournal.manager", "append_reply")
"""Append entries to a full-journal reply, outside the AOF and replication."""
