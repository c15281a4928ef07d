"""The job manager: one active process that owns every job's life and posts its events."""
