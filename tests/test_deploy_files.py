"""The deploy files, checked mechanically (no container engine runs here): the compose file is valid
Compose (the Compose Specification's own JSON schema, in tests/data), every service it runs is a real
`jobjournal` command with settings the code accepts, and the image holds every installed package."""

from __future__ import annotations

import json
import re
import tomllib

import jsonschema
import pytest
import yaml
from click.testing import CliRunner

from jobjournal.cli import main
from jobjournal.common.settings import load_settings

from .conftest import ROOT

DEPLOY = ROOT / "deploy"


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


def _ours(compose: dict) -> dict[str, dict]:
    """The services that run the jobjournal image."""
    return {name: service for name, service in compose["services"].items() if "build" in service}


def test_the_compose_file_is_valid_under_the_compose_specification_schema(compose):
    schema = json.loads((ROOT / "tests" / "data" / "compose-spec.json").read_text())
    jsonschema.Draft7Validator(schema).validate(compose)


def test_the_compose_file_runs_a_3_master_cluster_a_queue_redis_a_manager_and_2_of_each_other_process(compose):
    commands = [tuple(service["command"]) for service in _ours(compose).values() if "profiles" not in service]
    assert sorted(commands) == [("executor",), ("executor",), ("lister",), ("lister",), ("manager",), ("worker",),
                                ("worker",)]
    nodes = [name for name, service in compose["services"].items() if "--cluster-enabled yes" in str(service)]
    assert len(nodes) == 3
    init = compose["services"]["cluster-init"]["command"][0]
    assert all(f"{node}:6379" in init for node in nodes)  # the cluster is made of exactly those nodes


def test_every_service_of_the_compose_file_is_a_jobjournal_command_with_settings_it_accepts(compose):
    for name, service in _ours(compose).items():
        environment = service["environment"]
        unknown = [variable for variable in environment if not hasattr(
            load_settings({}), variable.removeprefix("JOBJOURNAL_").lower())]
        assert not unknown, f"{name}: no such setting {unknown}"
        load_settings({key: str(value) for key, value in environment.items()})  # raises on a bad value
        result = CliRunner().invoke(main, [*service.get("command", []), "--help"])
        assert result.exit_code == 0, f"{name}: {result.output}"


def test_every_dependency_of_the_compose_file_names_a_service(compose):
    services = compose["services"]
    for name, service in services.items():
        depends = service.get("depends_on", [])
        assert set(depends) <= set(services), f"{name} depends on {set(depends) - set(services)}"


def test_the_image_copies_every_package_that_the_project_installs():
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    copied = {source for line in dockerfile.splitlines() if line.startswith("COPY")
              for source in line.split()[1:-1]}
    assert all((ROOT / source).exists() for source in copied)
    package_dirs = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
    assert set(package_dirs.values()) <= copied
    assert re.search(r"^ENTRYPOINT \[\"jobjournal\"\]$", dockerfile, re.M)
