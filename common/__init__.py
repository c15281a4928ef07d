"""Shared pieces of jobjournal: the job model, ids, events, keys, settings and Redis access."""
