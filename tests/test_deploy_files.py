"""The deploy files, checked mechanically (no container engine, systemd or Kubernetes cluster runs
here): the compose file is valid Compose (the Compose Specification's own JSON schema, in tests/data),
the systemd units pass `systemd-analyze verify`, the Kubernetes manifests are valid under the
Kubernetes JSON schemas of their kinds (tests/data/kubernetes) and render with `kubectl kustomize`;
every process any of them runs is a real `jobjournal` command, parsed by the CLI itself, with
settings the code accepts; and the image holds every installed package."""

from __future__ import annotations

import copy
import grp
import hashlib
import json
import os
import pwd
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import click
import jsonschema
import pytest
import yaml
from click.testing import CliRunner

from jobjournal.cli import main
from jobjournal.common.settings import Settings, load_settings

from .conftest import ROOT

DEPLOY = ROOT / "deploy"
SYSTEMD = DEPLOY / "systemd"
KUBERNETES = DEPLOY / "kubernetes"
K8S_SCHEMAS = ROOT / "tests" / "data" / "kubernetes"
SHIPPED_BIN = "/usr/local/bin/jobjournal"
"""Where the systemd units expect jobjournal (`pip install` as root puts it there)."""


def _check_command(argv: list[str], where: str) -> None:
    """`jobjournal ARGV` is a real command whose options the CLI accepts: --help answers, and the
    arguments parse (names, types, ranges, choices) without the command being run."""
    result = CliRunner().invoke(main, [*argv, "--help"])
    assert result.exit_code == 0, f"{where}: jobjournal {' '.join(argv)} --help: {result.output}"
    command, args, name = main, list(argv), "jobjournal"
    while isinstance(command, click.Group):
        assert args, f"{where}: jobjournal {' '.join(argv)} names no command"
        name, *args = args
        command = command.get_command(click.Context(main), name)
        assert command is not None, f"{where}: no command {name!r} in jobjournal {' '.join(argv)}"
    try:
        command.make_context(name, args)
    except click.ClickException as err:
        pytest.fail(f"{where}: jobjournal {' '.join(argv)}: {err.format_message()}")


def _check_settings(environment: dict, where: str) -> None:
    """Every JOBJOURNAL_* variable is a setting, and the code accepts the values."""
    ours = {key: str(value) for key, value in environment.items() if key.startswith("JOBJOURNAL_")}
    unknown = [key for key in ours if key.removeprefix("JOBJOURNAL_").lower() not in Settings.__struct_fields__]
    assert not unknown, f"{where}: no such setting {unknown}"
    load_settings(ours)  # raises on a bad value


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


def _ours(compose: dict) -> dict[str, dict]:
    """The services that run the jobjournal image."""
    return {name: service for name, service in compose["services"].items() if "build" in service}


def test_the_compose_file_is_valid_under_the_compose_specification_schema(compose):
    schema = json.loads((ROOT / "tests" / "data" / "compose-spec.json").read_text())
    jsonschema.Draft7Validator(schema).validate(compose)


def test_the_compose_file_runs_a_3_master_cluster_a_queue_redis_a_manager_2_of_each_other_process_and_the_web_view(
        compose):
    commands = [tuple(service["command"]) for service in _ours(compose).values() if "profiles" not in service]
    assert sorted(commands) == [("executor",), ("executor",), ("lister",), ("lister",), ("manager",),
                                ("web", "--host", "0.0.0.0", "--port", "8000"), ("worker",), ("worker",)]
    nodes = [name for name, service in compose["services"].items() if "--cluster-enabled yes" in str(service)]
    assert len(nodes) == 3
    init = compose["services"]["cluster-init"]["command"][0]
    assert all(f"{node}:6379" in init for node in nodes)  # the cluster is made of exactly those nodes


def test_every_service_of_the_compose_file_is_a_jobjournal_command_with_settings_it_accepts(compose):
    for name, service in _ours(compose).items():
        environment = service["environment"]
        assert all(key.startswith("JOBJOURNAL_") for key in environment), name
        _check_settings(environment, name)
        if "command" in service:
            _check_command(service["command"], name)
        else:  # the cli service: `run --rm cli COMMAND`
            assert CliRunner().invoke(main, ["--help"]).exit_code == 0
        healthcheck = service.get("healthcheck", {}).get("test")
        if healthcheck:
            assert healthcheck[:2] == ["CMD", "jobjournal"], f"{name}: {healthcheck}"
            _check_command(healthcheck[2:], f"{name} healthcheck")


def test_the_compose_file_publishes_the_web_view_on_the_hosts_loopback_and_the_manager_and_listers_serve_metrics(
        compose):
    services = compose["services"]
    web = services["web"]
    assert web["ports"] == ["127.0.0.1:8000:8000"]
    assert web["command"][web["command"].index("--host") + 1] == "0.0.0.0"  # in its container: for the port map
    for name, service in _ours(compose).items():
        settings = load_settings({key: str(value) for key, value in service["environment"].items()})
        if service.get("command", [None])[0] in ("manager", "lister"):
            assert settings.metrics_port and settings.metrics_host == "0.0.0.0", name
            assert str(settings.metrics_port) in map(str, service["expose"]), name
        else:
            assert not settings.metrics_port, name


def test_the_manager_and_the_listers_of_the_compose_file_are_healthy_when_they_hold_a_lease(compose):
    for name, service in _ours(compose).items():
        role = service.get("command", [None])[0]
        if role in ("manager", "lister"):
            assert service["healthcheck"]["test"] == ["CMD", "jobjournal", "ready", role], name


def test_every_redis_of_the_compose_file_runs_with_the_shipped_redis_conf(compose):
    redises = {name: service for name, service in compose["services"].items()
               if str(service.get("image", "")).startswith("redis:") and name != "cluster-init"}
    assert len(redises) == 4  # the 3 masters and the queues
    for name, service in redises.items():
        [mount] = service["volumes"]
        assert (DEPLOY / mount["source"]).resolve() == DEPLOY / "redis.conf" and mount["read_only"], name
        command = service["command"]
        command = command if isinstance(command, str) else " ".join(command)
        assert f"redis-server {mount['target']}" in command, name


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


# --- systemd --------------------------------------------------------------------------------------

SERVICES = ("jobjournal-manager.service", "jobjournal-worker@.service", "jobjournal-executor@.service",
            "jobjournal-lister@.service", "jobjournal-web.service")
TARGET = "jobjournal.target"


def _unit(path: Path) -> dict[str, list[tuple[str, str]]]:
    """A unit file as {section: [(key, value), ...]} (keys may repeat, as systemd allows)."""
    sections: dict[str, list[tuple[str, str]]] = {}
    section = None
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        assert not line.endswith("\\"), f"{path.name}: no continued lines, please: {line}"
        if line.startswith("["):
            section = sections.setdefault(line.strip("[]"), [])
        else:
            key, _, value = line.partition("=")
            section.append((key.strip(), value.strip()))
    return sections


def _values(unit: dict, section: str, key: str) -> list[str]:
    return [value for name, value in unit.get(section, []) if name == key]


def _target_instances() -> dict[str, list[str]]:
    """Unit file name -> the instances jobjournal.target wants ('' for a unit that is no template)."""
    wanted = [name for value in _values(_unit(SYSTEMD / TARGET), "Unit", "Wants") for name in value.split()]
    instances: dict[str, list[str]] = {}
    for name in wanted:
        stem, at, rest = name.partition("@")
        file = f"{stem}@.service" if at else name
        instances.setdefault(file, []).append(rest.removesuffix(".service") if at else "")
    return instances


def test_the_systemd_units_are_a_manager_workers_executors_listers_and_a_web_view_that_a_target_groups():
    assert sorted(path.name for path in SYSTEMD.glob("*.service")) == sorted(SERVICES)
    assert (SYSTEMD / TARGET).exists()
    instances = _target_instances()
    assert set(instances) == set(SERVICES), "the target wants every unit (at least one instance of a template)"
    assert len(instances["jobjournal-worker@.service"]) >= 2 and len(instances["jobjournal-executor@.service"]) >= 2
    assert len(instances["jobjournal-lister@.service"]) >= 2
    assert _values(_unit(SYSTEMD / TARGET), "Install", "WantedBy") == ["multi-user.target"]
    for name in SERVICES:
        unit = _unit(SYSTEMD / name)
        assert _values(unit, "Install", "WantedBy") == [TARGET], name  # enable adds more instances to it
        assert _values(unit, "Unit", "PartOf") == [TARGET], name  # stopping the target stops them


@pytest.mark.parametrize("name", SERVICES)
def test_every_systemd_service_restarts_runs_as_jobjournal_reads_the_env_file_and_is_hardened(name):
    unit = _unit(SYSTEMD / name)
    service = dict(unit["Service"])
    assert service["Restart"] in ("on-failure", "always") and service["RestartSec"], name
    assert service["User"] == "jobjournal" and service["Group"] == "jobjournal", name
    assert _values(unit, "Service", "EnvironmentFile")[0] == "/etc/jobjournal/env", name
    assert service["NoNewPrivileges"] == "yes" and service["PrivateTmp"] == "yes", name
    assert service["StateDirectory"] == "jobjournal", name  # /var/lib/jobjournal, writable whatever ProtectSystem
    # strict: all read-only but the state directory; the executor's jobs write where they were
    # submitted from, so it keeps /home and /var writable (its comment says how to confine them)
    assert service["ProtectSystem"] == ("full" if "executor" in name else "strict"), name


def _exec_start(name: str) -> list[str]:
    [exec_start] = _values(_unit(SYSTEMD / name), "Service", "ExecStart")
    return exec_start.split()


@pytest.mark.parametrize("name", SERVICES)
def test_every_systemd_service_runs_a_jobjournal_command_that_the_cli_accepts(name):
    binary, *argv = _exec_start(name)
    assert binary == SHIPPED_BIN, name
    assert argv[0] == name.removeprefix("jobjournal-").partition("@")[0].removesuffix(".service"), name
    for instance in _target_instances()[name]:
        _check_command([word.replace("%i", instance) for word in argv], f"{name} instance {instance!r}")


def test_the_lister_instances_of_the_target_serve_metrics_on_ports_of_their_own():
    ports = [int(instance) for instance in _target_instances()["jobjournal-lister@.service"]]
    manager = _exec_start("jobjournal-manager.service")
    assert len(set(ports)) == len(ports) and int(manager[manager.index("--metrics-port") + 1]) not in ports


def _env_example() -> list[tuple[str, str, bool]]:
    """(variable, value, commented out) of each VARIABLE=value line of env.example."""
    lines = (SYSTEMD / "env.example").read_text().splitlines()
    return [(match[2], match[3], bool(match[1])) for line in lines
            if (match := re.fullmatch(r"(#)?(JOBJOURNAL_[A-Z0-9_]+)=(.*)", line))]


def test_the_env_example_lists_every_setting_and_a_commented_line_shows_its_default():
    listed = _env_example()
    names = [name.removeprefix("JOBJOURNAL_").lower() for name, _, _ in listed]
    assert len(names) == len(set(names)), "a setting listed twice"
    unknown = set(names) - set(Settings.__struct_fields__)
    assert not unknown, f"no such setting {unknown}"
    missing = set(Settings.__struct_fields__) - set(names) - {"fault"}  # fault: for tests only
    assert not missing, f"env.example does not list {sorted(missing)}"
    defaults = load_settings({})
    for (variable, value, commented), name in zip(listed, names, strict=True):
        settings = load_settings({variable: value})  # raises on a bad value
        if commented and name != "home":  # home: what the units set, not the per-user default
            assert getattr(settings, name) == getattr(defaults, name), f"{variable}={value} is not the default"
    assert all(name in (variable for variable, _, commented in listed if not commented)
               for name in ("JOBJOURNAL_REDIS_URL", "JOBJOURNAL_EXEC_BACKEND"))


def _jobjournal_binary() -> str:
    """The jobjournal this test runs with: the script beside the interpreter, else the one on PATH."""
    beside = Path(sys.executable).parent / "jobjournal"
    found = str(beside) if beside.exists() else shutil.which("jobjournal")
    if not found:
        pytest.skip("no jobjournal script beside the interpreter or on PATH (pip install -e . makes one)")
    return found


def test_every_systemd_unit_passes_systemd_analyze_verify(tmp_path):
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("no systemd-analyze here (Debian's systemd package has it)")
    binary = _jobjournal_binary()
    # verify checks that ExecStart's binary exists and is executable: point it at this checkout's.
    # User= and Group= are replaced by the ones running the test: systemd 252's verify does not
    # look users up at all (User=no-such-user passes silently, tried by hand), a newer one might
    # complain that jobjournal does not exist here; the test above checks User=jobjournal itself.
    user, group = pwd.getpwuid(os.getuid()).pw_name, grp.getgrgid(os.getgid()).gr_name
    for name in (*SERVICES, TARGET):
        text = (SYSTEMD / name).read_text().replace(f"ExecStart={SHIPPED_BIN} ", f"ExecStart={binary} ")
        text = re.sub(r"^User=.*$", f"User={user}", text, flags=re.M)
        (tmp_path / name).write_text(re.sub(r"^Group=.*$", f"Group={group}", text, flags=re.M))
    for name in (*SERVICES, TARGET):  # a template is verified as instance 'i'; the target loads the rest
        result = subprocess.run([analyze, "verify", str(tmp_path / name)], capture_output=True, text=True,
                                timeout=60, cwd=tmp_path)
        # verify exits 0 on an unknown key or a bad value, printing "ignoring": no output at all is the bar
        assert result.returncode == 0 and not (result.stdout + result.stderr).strip(), \
            f"{name}: {result.stdout}{result.stderr}"


def test_systemd_analyze_verify_catches_what_the_test_relies_on_it_for(tmp_path):
    """The bar of the test above, checked: a typo in a key and a missing binary both show."""
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("no systemd-analyze here (Debian's systemd package has it)")
    missing = tmp_path / "no-such-jobjournal"
    text = (SYSTEMD / "jobjournal-web.service").read_text().replace(SHIPPED_BIN, str(missing))
    (tmp_path / "jobjournal-web.service").write_text(text.replace("NoNewPrivileges=", "NoNewPrivilege="))
    result = subprocess.run([analyze, "verify", str(tmp_path / "jobjournal-web.service")], capture_output=True,
                            text=True, timeout=60)
    assert "NoNewPrivilege" in result.stderr  # an unknown key: a warning only
    assert result.returncode != 0 and str(missing) in result.stderr  # a missing binary: an error


# --- Kubernetes -----------------------------------------------------------------------------------

def _manifests() -> dict[str, list[dict]]:
    """File name -> its documents, for every manifest (kustomization.yaml is kustomize's own)."""
    return {path.name: [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]
            for path in sorted(KUBERNETES.glob("*.yaml")) if path.name != "kustomization.yaml"}


@pytest.fixture(scope="module")
def k8s() -> list[dict]:
    return [doc for docs in _manifests().values() for doc in docs]


def _kind(docs: list[dict], kind: str) -> dict[str, dict]:
    return {doc["metadata"]["name"]: doc for doc in docs if doc["kind"] == kind}


def _schemas() -> dict[tuple[str, str], dict]:
    """(apiVersion, kind) -> the vendored schema of that kind."""
    schemas = {}
    for path in K8S_SCHEMAS.glob("*.json"):
        schema = json.loads(path.read_text())
        for gvk in schema["x-kubernetes-group-version-kind"]:
            schemas[(f"{gvk['group']}/{gvk['version']}".lstrip("/"), gvk["kind"])] = schema
    return schemas


def _validate(docs: list[dict], where: str) -> None:
    schemas = _schemas()
    for doc in docs:
        key = (doc.get("apiVersion"), doc.get("kind"))
        assert key in schemas, f"{where}: no schema for {key} in tests/data/kubernetes (vendor it)"
        errors = [f"{'.'.join(map(str, error.absolute_path))}: {error.message[:300]}"
                  for error in jsonschema.Draft7Validator(schemas[key]).iter_errors(doc)]
        assert not errors, f"{where}: {doc['kind']} {doc['metadata']['name']}: {errors}"


def test_the_vendored_kubernetes_schemas_are_the_files_their_readme_names_unchanged():
    listed = dict(re.findall(r"^\| `([\w.-]+\.json)` \| [^|]+ \| ([0-9a-f]{64}) \|$",
                             (K8S_SCHEMAS / "README.md").read_text(), re.M))
    assert sorted(listed) == sorted(path.name for path in K8S_SCHEMAS.glob("*.json"))
    for name, digest in listed.items():
        assert hashlib.sha256((K8S_SCHEMAS / name).read_bytes()).hexdigest() == digest, name


def test_every_kubernetes_file_parses_as_yaml_and_the_kustomization_lists_every_manifest():
    kustomization = yaml.safe_load((KUBERNETES / "kustomization.yaml").read_text())
    assert sorted(kustomization["resources"]) == sorted(_manifests())
    assert all(docs for docs in _manifests().values())


def test_every_kubernetes_manifest_is_valid_under_the_kubernetes_json_schema_of_its_kind(k8s):
    _validate(k8s, "deploy/kubernetes")


def test_the_kubernetes_schemas_catch_a_misspelt_field(k8s):
    """The vendored schemas are the strict ones: a field that does not exist fails, it is not ignored."""
    bad = copy.deepcopy(_kind(k8s, "Deployment")["web"])
    container = bad["spec"]["template"]["spec"]["containers"][0]
    container["readinesProbe"] = container.pop("readinessProbe")
    with pytest.raises(jsonschema.ValidationError, match="readinesProbe"):
        jsonschema.Draft7Validator(_schemas()[("apps/v1", "Deployment")]).validate(bad)


def _kustomize(directory):
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("no kubectl here (it renders kustomizations offline: `kubectl kustomize DIR`)")
    return subprocess.run([kubectl, "kustomize", str(directory)], capture_output=True, text=True, timeout=120)


def test_the_kustomization_renders_offline_into_valid_manifests_in_one_namespace(tmp_path):
    copied = tmp_path / "kubernetes"
    shutil.copytree(KUBERNETES, copied)
    (copied / "redis-password.txt").write_text("0123456789abcdef")  # as the README says to make it
    result = _kustomize(copied)
    assert result.returncode == 0, result.stderr
    rendered = [doc for doc in yaml.safe_load_all(result.stdout) if doc is not None]
    _validate(rendered, "kubectl kustomize deploy/kubernetes")
    assert len(rendered) == sum(len(docs) for docs in _manifests().values()) + len(_generated_secrets())
    assert set(_kind(rendered, "Secret")) == set(_generated_secrets())
    namespace = yaml.safe_load((KUBERNETES / "kustomization.yaml").read_text())["namespace"]
    assert all(doc["metadata"].get("namespace") == namespace for doc in rendered if doc["kind"] != "Namespace")
    assert list(_kind(rendered, "Namespace")) == [namespace]


def _pod_specs(docs: list[dict]) -> dict[str, dict]:
    """Workload name -> its pod template."""
    return {doc["metadata"]["name"]: doc["spec"]["template"] for doc in docs
            if doc["kind"] in ("Deployment", "StatefulSet")}


def _jobjournal_containers(docs: list[dict]):
    for name, template in _pod_specs(docs).items():
        for container in template["spec"]["containers"]:
            if container["image"].partition(":")[0] == "jobjournal":
                yield name, container


def test_the_kubernetes_redis_is_a_statefulset_with_a_volume_claim_the_shipped_redis_conf_and_a_headless_service(k8s):
    [redis] = _kind(k8s, "StatefulSet").values()
    service = _kind(k8s, "Service")[redis["spec"]["serviceName"]]
    assert service["spec"]["clusterIP"] == "None"  # headless: redis-0.redis names the pod
    assert service["spec"]["selector"].items() <= redis["spec"]["template"]["metadata"]["labels"].items()
    spec = redis["spec"]["template"]["spec"]
    [container] = spec["containers"]
    mounts = {mount["name"]: mount["mountPath"] for mount in container["volumeMounts"]}
    [claim] = redis["spec"]["volumeClaimTemplates"]
    args = container["args"]
    assert args[args.index("--dir") + 1] == mounts[claim["metadata"]["name"]]  # the data is on the claim
    [config_volume] = [volume for volume in spec["volumes"] if "configMap" in volume]
    config = _kind(k8s, "ConfigMap")[config_volume["configMap"]["name"]]
    assert config["data"]["redis.conf"] == (DEPLOY / "redis.conf").read_text()  # the shipped one, unchanged
    assert args[:2] == ["redis-server", f"{mounts[config_volume['name']]}/redis.conf"]
    assert "--requirepass" in args


def test_every_kubernetes_container_of_jobjournal_runs_a_jobjournal_command_with_settings_it_accepts(k8s):
    configmaps = _kind(k8s, "ConfigMap")
    containers = list(_jobjournal_containers(k8s))
    assert sorted(name for name, _ in containers) == ["executor", "lister", "manager", "web", "worker"]
    for name, container in containers:
        assert "command" not in container, f"{name}: the image's ENTRYPOINT is jobjournal; give args"
        _check_command(container["args"], name)
        environment = {variable["name"]: variable.get("value", "") for variable in container["env"]}
        for source in container.get("envFrom", []):
            environment |= configmaps[source["configMapRef"]["name"]]["data"]
        _check_settings(environment, name)
        for probe in ("readinessProbe", "livenessProbe"):
            command = container.get(probe, {}).get("exec", {}).get("command")
            if command:
                assert command[0] == "jobjournal", f"{name} {probe}: {command}"
                _check_command(command[1:], f"{name} {probe}")


def test_the_manager_and_lister_deployments_are_ready_when_they_hold_a_lease(k8s):
    deployments = _kind(k8s, "Deployment")
    for role in ("manager", "lister"):
        deployment = deployments[role]
        assert deployment["spec"]["replicas"] == 2, role
        [container] = deployment["spec"]["template"]["spec"]["containers"]
        assert container["readinessProbe"]["exec"]["command"] == ["jobjournal", "ready", role], role
        assert container["livenessProbe"], role
    # The standby manager is never ready while the leader lives: a rollout that must keep one pod
    # available would wait for it forever, so the manager's may take every old pod down at once.
    assert deployments["manager"]["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == "100%"
    web = deployments["web"]["spec"]["template"]["spec"]["containers"][0]
    assert web["args"][web["args"].index("--host") + 1] == "0.0.0.0"


def test_the_kubernetes_executors_run_as_many_jobs_at_once_as_the_managers_pool_has_cores(k8s):
    settings = load_settings(_kind(k8s, "ConfigMap")["jobjournal-settings"]["data"])
    executor = _kind(k8s, "Deployment")["executor"]
    args = executor["spec"]["template"]["spec"]["containers"][0]["args"]
    slots = int(args[args.index("--slots") + 1])
    assert executor["spec"]["replicas"] * slots == settings.nodes * settings.cores_per_node


def _generated_secrets() -> dict[str, set[str]]:
    """The Secrets the kustomization makes (secretGenerator): name -> their keys."""
    kustomization = yaml.safe_load((KUBERNETES / "kustomization.yaml").read_text())
    return {secret["name"]: {entry.partition("=")[0] for entry in secret["files"]}
            for secret in kustomization.get("secretGenerator", [])}


def test_every_kubernetes_name_that_a_manifest_refers_to_exists(k8s):
    secrets, configmaps, services = _generated_secrets(), _kind(k8s, "ConfigMap"), _kind(k8s, "Service")
    [redis] = _kind(k8s, "StatefulSet").values()
    templates = _pod_specs(k8s)
    for name, doc in {**_kind(k8s, "Deployment"), **_kind(k8s, "StatefulSet")}.items():
        selector, labels = doc["spec"]["selector"]["matchLabels"], doc["spec"]["template"]["metadata"]["labels"]
        assert selector.items() <= labels.items(), f"{name}: its selector does not select its pods"
    for name, template in templates.items():
        for container in template["spec"]["containers"]:
            requests = container["resources"]["requests"]
            assert requests["cpu"] and requests["memory"], f"{name}: resource requests"
            for variable in container.get("env", []):
                ref = variable.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    assert ref["key"] in secrets[ref["name"]], f"{name}: {ref}"
                if variable["name"] == "JOBJOURNAL_REDIS_URL":  # the StatefulSet's pod, by the headless Service
                    host = re.match(r"redis://[^@]*@([^:/]+)", variable["value"])[1]
                    assert host == f"{redis['metadata']['name']}-0.{redis['spec']['serviceName']}", name
            for source in container.get("envFrom", []):
                assert source["configMapRef"]["name"] in configmaps, name
    for name, service in services.items():
        pods = [template for template in templates.values()
                if service["spec"]["selector"].items() <= template["metadata"]["labels"].items()]
        assert len(pods) == 1, f"service {name} selects {len(pods)} workloads"
        ports = {port["name"] for container in pods[0]["spec"]["containers"] for port in container.get("ports", [])}
        assert all(port["targetPort"] in ports for port in service["spec"]["ports"]), name
    assert "web" in services


def test_the_kubernetes_image_tag_is_the_projects_version():
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    [image] = yaml.safe_load((KUBERNETES / "kustomization.yaml").read_text())["images"]
    assert image["name"] == "jobjournal" and image["newTag"] == version


def test_the_kustomization_refuses_to_render_without_a_redis_password_of_the_operators(tmp_path):
    """No password ships with the manifests: nothing can be applied with a known one."""
    copied = tmp_path / "kubernetes"
    shutil.copytree(KUBERNETES, copied, ignore=shutil.ignore_patterns("redis-password.txt"))
    result = _kustomize(copied)
    assert result.returncode != 0 and "redis-password.txt" in result.stderr
