"""The installed package: one top-level name, and it works from any directory."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from jobjournal.common import keys, tasks
from jobjournal.common.jobspec import encode, make_jobspec

from .conftest import ROOT
from .helpers import wait_for

pytestmark = pytest.mark.timeout(120)  # the first test to use it builds and installs the wheel (pip)

DECOY = 'raise RuntimeError("the decoy {name} package was imported instead of jobjournal.{name}")\n'


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """A wheel built from a copy of this checkout (setuptools builds in the source tree; no build
    isolation: the test extras bring setuptools)."""
    source, out = tmp_path_factory.mktemp("source") / "jobjournal", tmp_path_factory.mktemp("wheel")
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(".*", "build", "*.egg-info", "__pycache__"))
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), str(source)],
        check=True, capture_output=True, timeout=300,
    )
    [built] = out.glob("jobjournal-*.whl")
    return built


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory) -> Path:
    """The wheel installed into a directory of its own (its dependencies come from this venv)."""
    target = tmp_path_factory.mktemp("site")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
        check=True, capture_output=True, timeout=300,
    )
    return target


@pytest.fixture
def decoy_dir(tmp_path) -> Path:
    """A working directory holding packages named common, manager and lister that must never load."""
    for name in ("common", "manager", "lister"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "__init__.py").write_text(DECOY.format(name=name))
    return tmp_path


def test_the_wheel_holds_jobjournal_and_nothing_else_at_top_level(wheel):
    with zipfile.ZipFile(wheel) as archive:
        top = {name.split("/")[0] for name in archive.namelist()}
        names = archive.namelist()
    assert {name for name in top if not name.endswith(".dist-info")} == {"jobjournal"}
    for package in ("common", "manager", "lister"):
        assert any(name.startswith(f"jobjournal/{package}/lua/") and name.endswith(".lua") for name in names)


def test_the_installed_package_runs_a_job_from_a_directory_holding_common_and_manager(
    installed, decoy_dir, redis, redis_url, tmp_path_factory
):
    home = tmp_path_factory.mktemp("home")
    env = {
        **os.environ,
        "PYTHONPATH": str(installed),
        "JOBJOURNAL_REDIS_URL": redis_url,
        "JOBJOURNAL_HOME": str(home),
        "JOBJOURNAL_REBUILD_SPLIT_FROM": "0",  # the lister's rebuild starts a helper process too
    }

    started: list[subprocess.Popen] = []

    def jobjournal(*args: str, **popen) -> subprocess.Popen:
        command = [sys.executable, "-m", "jobjournal", *args]
        started.append(subprocess.Popen(command, cwd=decoy_dir, env=env, stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT, text=True, **popen))
        return started[-1]

    where = subprocess.run(
        [sys.executable, "-c", "import jobjournal.common.keys as k, jobjournal.lister.helper as h; print(k.__file__)"],
        cwd=decoy_dir, env=env, capture_output=True, text=True, check=True,
    )
    assert where.stdout.startswith(str(installed))
    services = [jobjournal("manager"), jobjournal("worker"), jobjournal("lister")]
    try:
        wait_for(lambda: redis.exists(keys.manager_lease()), what="the manager to lead")  # else submit says queued
        submitted = jobjournal("submit", "--sim-runtime", "0", "--", "true").communicate(timeout=60)[0]
        assert submitted.strip().startswith("f"), submitted
        shown = jobjournal("job", "--wait-state", "inactive", submitted.strip()).communicate(timeout=60)[0]
        assert "COMPLETED" in shown, shown
    finally:
        for proc in started:  # the services, and a client that timed out
            if proc.poll() is None:
                proc.terminate()
        logs = [_output_once_stopped(proc) for proc in services]
        for proc in started:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
    assert not any("decoy" in log for log in logs), logs


def _output_once_stopped(proc: subprocess.Popen) -> str:
    """What a terminated service printed; killed if it does not stop in time."""
    try:
        return proc.communicate(timeout=30)[0]
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.communicate()[0]


def test_a_task_naming_the_previous_versions_path_is_served_under_its_new_path(redis, spawn):
    spec = encode(make_jobspec(command=["true"])).decode()
    old = next(path for path, new in tasks.PREVIOUS.items() if new == tasks.INGEST)
    task = tasks.ingest_queue(redis).enqueue(old, [spec], 1000, result_ttl=10)
    proc = spawn("worker", "--queue", "ingest", "--burst")
    assert proc.wait(60) == 0
    assert len(task.latest_result(timeout=5).return_value["ids"]) == 1


def test_the_public_api_is_importable_from_the_package_and_names_the_real_functions():
    import jobjournal
    from jobjournal.common.full_journal import follow_full_journal
    from jobjournal.manager.client import submit

    assert jobjournal.submit is submit and jobjournal.follow_full_journal is follow_full_journal
    assert all(callable(getattr(jobjournal, name)) for name in jobjournal.__all__)
