"""`make bench`: performance figures, measured side by side (see bench/run.py)."""
