"""A local Redis Cluster of N masters from the bundled redis-server, for trying scale-out and for tests.

Each master runs as a daemon in `home/<port>/` on 127.0.0.1, on a free port (and a free cluster-bus
port, port + 10000); the 16384 slots are split into N equal ranges, one per master, in order, so
partition p of an N-partition store (common/layout.py) lands on master p. No replicas: it is for one
machine. The ports are kept in `home/cluster.json`, so `jobjournal redis start --cluster N` reuses a
running cluster.
"""

from __future__ import annotations

import json
import random
import socket
import subprocess
import time
from pathlib import Path

import redis
from redis.backoff import NoBackoff
from redis.crc import REDIS_CLUSTER_HASH_SLOTS
from redis.retry import Retry

from jobjournal.common.errors import JobJournalError
from jobjournal.common.redis_server import SERVER_CONFIG, _alive, answers, bundled_binary

SCHEME = "redis+cluster://"
NODE_CONFIG = {
    "cluster-enabled": "yes",
    "cluster-config-file": "nodes.conf",
    "cluster-node-timeout": "2000",
    "appendonly": "no",  # a trial cluster: nothing to keep
    "save": "",
    "stream-node-max-bytes": SERVER_CONFIG["stream-node-max-bytes"],
    "stream-node-max-entries": SERVER_CONFIG["stream-node-max-entries"],
    "daemonize": "yes",
    "bind": "127.0.0.1",
}


class EmbeddedCluster:
    def __init__(self, home: str | Path, masters: int = 3):
        if not 1 <= masters <= 16:
            raise JobJournalError(f"{masters} masters: choose 1 to 16")
        self.home = Path(home).expanduser().absolute()
        self.masters = masters
        self.state = self.home / "cluster.json"

    @property
    def ports(self) -> list[int]:
        try:
            return json.loads(self.state.read_text())["ports"]
        except (OSError, ValueError, KeyError):
            return []

    @property
    def url(self) -> str:
        return f"{SCHEME}127.0.0.1:{self.ports[0]}"

    def is_running(self) -> bool:
        ports = self.ports
        return bool(ports) and all(_state_ok(port) for port in ports)

    def start(self, timeout: float = 30.0) -> str:
        """Start the cluster unless it already runs; its URL (redis+cluster://host:port)."""
        if self.is_running():
            return self.url
        self.stop()
        self.home.mkdir(parents=True, exist_ok=True)
        ports = _free_ports(self.masters)
        self.state.write_text(json.dumps({"ports": ports}))
        clients = [_client(port) for port in ports]
        try:  # a node that fails to start or join leaves no other behind
            for port in ports:
                self._start_node(port)
            for index, client in enumerate(clients):
                low = index * REDIS_CLUSTER_HASH_SLOTS // len(ports)
                high = (index + 1) * REDIS_CLUSTER_HASH_SLOTS // len(ports)
                client.execute_command("CLUSTER ADDSLOTS", *range(low, high))
            for client in clients[1:]:
                client.execute_command("CLUSTER MEET", "127.0.0.1", ports[0])
            _wait(lambda: all(_state_ok(port, len(ports)) for port in ports), timeout, "become ready")
        except BaseException:
            self.stop()
            raise
        finally:
            for client in clients:
                client.close()
        return self.url

    def stop(self, timeout: float = 10.0) -> bool:
        """Shut every node down; False if none was running."""
        stopped = False
        for port in self.ports:
            pid = _pid(self.home / str(port) / "redis.pid")
            client = _client(port)
            try:
                client.shutdown(nosave=True)
                stopped = True
            except redis.RedisError:
                pass  # not running, or it closed the connection as it went
            finally:
                client.close()
            _wait(lambda pid=pid: not _alive(pid), timeout, "stop")
        self.state.unlink(missing_ok=True)
        return stopped

    def _start_node(self, port: int) -> None:
        node = self.home / str(port)
        node.mkdir(parents=True, exist_ok=True)
        (node / "nodes.conf").unlink(missing_ok=True)
        config = {**NODE_CONFIG, "port": str(port), "dir": str(node), "pidfile": str(node / "redis.pid"),
                  "logfile": str(node / "redis.log")}
        args = [str(bundled_binary())]
        for name, value in config.items():
            args += [f"--{name}", *(value.split() or [""])]
        proc = subprocess.run(args, capture_output=True, text=True, cwd=node)
        if proc.returncode != 0:
            raise JobJournalError(f"redis-server on port {port} failed to start: {proc.stderr or proc.stdout}")
        _wait(lambda: answers(_client(port)), 10.0, f"answer on port {port}")


def _free_ports(count: int) -> list[int]:
    """Ports whose cluster-bus port (+10000) is free too, picked at random (never fixed ones)."""
    ports: list[int] = []
    while len(ports) < count:
        port = random.randint(20000, 55000)
        if port not in ports and _bindable(port) and _bindable(port + 10000):
            ports.append(port)
    return ports


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _client(port: int) -> redis.Redis:
    """A client of one node that does not retry (a node that shuts down closes the connection)."""
    return redis.Redis(host="127.0.0.1", port=port, socket_connect_timeout=1, socket_timeout=5,
                       retry=Retry(NoBackoff(), 0))


def _state_ok(port: int, nodes: int | None = None) -> bool:
    client = _client(port)
    try:
        info = client.execute_command("CLUSTER INFO")
    except redis.RedisError:
        return False
    finally:
        client.close()
    if not isinstance(info, dict):  # redis-py parses CLUSTER INFO into a dict; a raw reply is text
        text = info.decode() if isinstance(info, bytes) else str(info)
        info = dict(line.split(":", 1) for line in text.split() if ":" in line)
    fields = {str(key): str(value) for key, value in info.items()}
    return fields.get("cluster_state") == "ok" and (nodes is None or fields.get("cluster_known_nodes") == str(nodes))


def _pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def _wait(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise JobJournalError(f"the local cluster did not {what} in {timeout}s")
        time.sleep(0.05)
