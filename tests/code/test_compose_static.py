"""The Docker deployment, checked without containers: docker-compose.yml against the Compose
specification's JSON schema and the deployment's rules, every Dockerfile through hadolint,
and the containers' commands against the local stack's service list.

The same files run for real under podman in tests/platform/test_compose_run.py.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from cinesense.config import Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILES = sorted(
    [ROOT / "base.Dockerfile", *ROOT.glob("*/Dockerfile"), *ROOT.glob("scripts/podman/*file")]
)
ONE_SHOTS = {"objectstore-init", "airflow-init", "model-init"}
SECRET_NAME = re.compile(r"PASSWORD|SECRET|_KEY$|KEY_ID|TOKEN|FERNET|DATABASE_URI|SQL_ALCHEMY")
INTERPOLATION = re.compile(r"\$\{([A-Za-z0-9_]+)(?::?([-?+])([^}]*))?\}")


def _tool(name: str) -> str:
    found = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is missing: install requirements-dev.txt (pip install -r ...)")
    return found


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


def _environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    assert isinstance(env, dict), "environment must be a mapping (anchors merge into it)"
    return {key: str(value) for key, value in env.items()}


def test_compose_file_matches_the_compose_specification_schema() -> None:
    result = subprocess.run(
        [_tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(COMPOSE)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_dockerfile_passes_hadolint(dockerfile: Path) -> None:
    result = subprocess.run(
        [_tool("hadolint"), "--config", str(ROOT / ".hadolint.yaml"), str(dockerfile)],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_secret_comes_from_the_environment_without_a_default(
    services: dict[str, dict[str, Any]],
) -> None:
    checked = 0
    for name, service in services.items():
        for key, value in _environment(service).items():
            if not SECRET_NAME.search(key):
                continue
            references = INTERPOLATION.findall(value)
            secret_refs = [ref for ref in references if SECRET_NAME.search(ref[0])]
            assert secret_refs, f"{name}: {key} must come from ${{VAR:?message}}, got {value!r}"
            for variable, operator, _message in secret_refs:
                assert operator == "?", f"{name}: {key} gives {variable} a default or none:?"
                checked += 1
    assert checked >= 10


def test_env_example_leaves_every_secret_empty() -> None:
    compose_text = COMPOSE.read_text()
    required = {m[0] for m in INTERPOLATION.findall(compose_text) if m[1] == "?"}
    example: dict[str, str] = {}
    for line in (ROOT / ".env.example").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            key, _, value = line.partition("=")
            example[key.strip()] = value.strip()
    assert required <= set(example), f"missing in .env.example: {required - set(example)}"
    assert {key: example[key] for key in required if example[key]} == {}
    # every variable compose reads is documented in .env.example
    used = {m[0] for m in INTERPOLATION.findall(compose_text)} - {"HOSTNAME"}
    assert used <= set(example), f"undocumented in .env.example: {used - set(example)}"


def test_every_long_running_service_has_a_healthcheck_and_a_restart_policy(
    services: dict[str, dict[str, Any]],
) -> None:
    for name, service in services.items():
        if name in ONE_SHOTS:
            assert service.get("restart") == "no", f"one-shot {name} must not restart"
            assert "healthcheck" not in service
            continue
        check = service.get("healthcheck")
        assert check and check.get("test"), f"{name} has no healthcheck"
        assert not check.get("disable"), name
        assert service.get("restart") == "unless-stopped", f"{name}: restart policy"


def test_start_order_waits_on_health_and_completed_one_shots(
    services: dict[str, dict[str, Any]],
) -> None:
    for name, service in services.items():
        depends = service.get("depends_on", {})
        assert isinstance(depends, dict), f"{name}: depends_on needs conditions"
        for dependency, spec in depends.items():
            want = (
                "service_completed_successfully" if dependency in ONE_SHOTS else "service_healthy"
            )
            assert spec.get("condition") == want, f"{name} -> {dependency}"
    # Nothing waits on model-init: the API answers 503 until a champion exists, then loads
    # it at its next registry poll, so a failed registration does not keep the platform down.
    for one_shot in ONE_SHOTS - {"model-init"}:
        assert any(one_shot in s.get("depends_on", {}) for s in services.values()), one_shot


def test_only_nginx_publishes_a_port(services: dict[str, dict[str, Any]]) -> None:
    published = {name for name, service in services.items() if service.get("ports")}
    assert published == {"nginx"}


def test_data_lives_in_named_volumes(
    compose: dict[str, Any], services: dict[str, dict[str, Any]]
) -> None:
    named = set(compose.get("volumes", {}))
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source, _target, *mode = volume.split(":")
            if source.startswith("."):
                assert mode == ["ro"], f"{name}: bind mount {source} must be read-only"
                continue
            assert source in named, f"{name}: {source} is not a declared named volume"
    assert {"postgres-data", "objectstore-data", "airflow-home"} <= named


def test_images_are_pinned(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        image = service["image"]
        repository, _, tag = image.rpartition(":")
        assert repository and tag and tag != "latest", f"{name}: pin {image}"
    for dockerfile in DOCKERFILES:
        for line in dockerfile.read_text().splitlines():
            match = re.match(r"ARG (\w+_IMAGE)=(\S+)", line)
            if match:
                assert ":" in match.group(2) and not match.group(2).endswith(":latest"), line
            assert not re.match(r"FROM \S+:latest", line), f"{dockerfile}: {line}"


def test_images_run_as_a_non_root_user(services: dict[str, dict[str, Any]]) -> None:
    for dockerfile in [ROOT / "base.Dockerfile", *ROOT.glob("*/Dockerfile")]:
        users = re.findall(r"^USER (\S+)", dockerfile.read_text(), flags=re.M)
        if dockerfile.name == "base.Dockerfile" or users:
            assert users and users[-1] not in ("0", "root"), f"{dockerfile} ends as root"
    assert services["postgres"].get("user") == "postgres"


def _resolved(value: str) -> str:
    """A compose value with its ${VAR:-default} / ${VAR:?message} references filled in."""
    return INTERPOLATION.sub(lambda m: m.group(3) if m.group(2) == "-" else "x" * 16, value)


def _settings_of(
    service: dict[str, Any], monkeypatch: pytest.MonkeyPatch, **overrides: str
) -> Settings:
    """The settings `cinesense stack run` sees inside the container of ``service``."""
    for key in list(os.environ):
        if key.startswith("CINESENSE_"):
            monkeypatch.delenv(key)
    for key, value in {**_environment(service), **overrides}.items():
        if key.startswith("CINESENSE_"):
            monkeypatch.setenv(key, _resolved(value))
    return Settings(_env_file=None)  # type: ignore[call-arg]


def test_project_containers_run_the_local_stack_entrypoint(
    services: dict[str, dict[str, Any]], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Each container's command is the command the local supervisor runs for that service."""
    from cinesense.stack import layout, supervisor

    ours = {name: s for name, s in services.items() if s["image"].startswith("cinesense/")}
    (tmp_path / "cinesense").touch()  # the Airflow virtualenv's cinesense, for render()
    settings = _settings_of(
        services["api"], monkeypatch, CINESENSE_STACK__AIRFLOW_BIN=str(tmp_path)
    )
    programs = dict(
        re.findall(
            r"^\[program:(\S+)\]\ncommand=\S*/cinesense (.+)$", supervisor.render(settings), re.M
        )
    )
    assert set(programs) == set(layout.SERVICES)
    for name, service in ours.items():
        assert service["command"][0] == "cinesense", name
        if name in ONE_SHOTS:
            assert service["command"] == ["cinesense", "stack", "run", name], name
        else:
            assert service["command"][1:] == programs[name].split(), name
    assert set(ours) - ONE_SHOTS == set(layout.SERVICES), "compose and the local stack differ"
    assert {layout.OBJECTSTORE_INIT, layout.AIRFLOW_INIT, layout.MODEL_INIT} == ONE_SHOTS


def test_healthchecks_ask_what_the_local_stack_asks(
    services: dict[str, dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Inside each container, the health URL of cinesense.stack.health on loopback. Airflow's
    scheduler, DAG processor and triggerer check their own job instead of the api-server's
    summary, so that each container reports itself."""
    from cinesense.stack import health

    own_checks = {"airflow-scheduler", "airflow-dag-processor", "airflow-triggerer"}
    loopback = json.dumps({name: "127.0.0.1" for name in services})
    for name, service in services.items():
        if name in ONE_SHOTS | own_checks | {"postgres"}:
            continue
        settings = _settings_of(service, monkeypatch, CINESENSE_STACK__HOSTS=loopback)
        test = service["healthcheck"]["test"]
        assert test[-1].endswith(f"u.urlopen('{health.health_url(settings, name)}', timeout=5)\"")


def test_airflow_services_share_one_secret_set(services: dict[str, dict[str, Any]]) -> None:
    airflow = {n: _environment(s) for n, s in services.items() if n.startswith("airflow-")}
    assert len(airflow) == 5
    shared = (
        "CINESENSE_STACK__AIRFLOW_JWT_SECRET",
        "CINESENSE_STACK__AIRFLOW_SECRET_KEY",
        "AIRFLOW__CORE__FERNET_KEY",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN",
    )
    for key in shared:
        assert len({env.get(key) for env in airflow.values()}) == 1, key
        assert all(env.get(key) for env in airflow.values()), key


def test_store_credentials_stay_off_the_ui_and_nginx(
    services: dict[str, dict[str, Any]],
) -> None:
    for name in ("ui", "nginx"):
        secrets = [key for key in _environment(services[name]) if SECRET_NAME.search(key)]
        assert secrets == [], f"{name} holds {secrets}"


def _pins(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9_.\[\]-]+)==(\S+)", line)
        if match:
            pins[re.sub(r"\[.*\]", "", match.group(1)).lower()] = match.group(2)
    return pins


def test_image_pins_are_requirements_pins_and_the_api_image_has_no_torch() -> None:
    full = _pins(ROOT / "requirements.txt")
    serve = _pins(ROOT / "requirements-serve.txt")
    assert not {"torch", "transformers", "scikit-learn", "playwright", "matplotlib"} & set(serve)
    assert serve.pop("mlflow-skinny") == full["mlflow"]
    assert {name: (v, full.get(name)) for name, v in serve.items() if full.get(name) != v} == {}
    docker = _pins(ROOT / "requirements-docker.txt")
    shared = set(docker) & set(full)
    assert {name: (docker[name], full[name]) for name in shared if docker[name] != full[name]} == {}


def _is_setting(name: str) -> bool:
    """Whether CINESENSE_A__B names the field a.b of Settings (pydantic-settings ignores
    unknown variables, so a misspelt one is silently without effect)."""
    model: Any = Settings
    for part in name.removeprefix("CINESENSE_").lower().split("__"):
        fields = getattr(model, "model_fields", {})
        if part not in fields:
            return False
        model = fields[part].annotation
    return True


def test_every_cinesense_variable_names_a_setting(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        for key in _environment(service):
            if key.startswith("CINESENSE_") and key not in {"CINESENSE_HTTP_PORT"}:
                assert _is_setting(key), f"{name}: {key} is not a setting"
