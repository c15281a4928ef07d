"""`--metrics-port`: serve a process's metrics over HTTP in a thread (prometheus-client's own
server), from a registry of its own: no global one."""

from __future__ import annotations

import logging

from prometheus_client import CollectorRegistry, start_http_server

log = logging.getLogger("jobjournal.metrics")


def serve_metrics(port: int, host: str, *collectors):
    """Serve `collectors` at http://host:port/metrics until the process ends; the server (its
    `server_address` says the port taken when `port` was 0). OSError when the port is taken."""
    registry = CollectorRegistry(auto_describe=False)
    for collector in collectors:
        registry.register(collector)
    server, _ = start_http_server(port, addr=host, registry=registry)
    log.info("metrics at http://%s:%d/metrics", *server.server_address[:2])
    return server
