"""Prometheus metrics (prometheus-client): the store's, read from Redis at each scrape (store.py);
a manager's or lister's own, read from the process (process.py); and serving them (serve.py)."""
