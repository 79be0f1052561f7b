"""docker-compose.yml for real: the images built with podman (scripts/podman/build.sh), the
compose file run by Debian's podman-compose (scripts/podman/compose.py adds the start order
and healthchecks podman-compose 1.0 lacks without systemd), then used as a person would:
every service healthy, a prediction through nginx, the UI page in Chromium, the Airflow
REST API triggering a DAG, and the stack down and up again with its data kept.

The slowest kind (`containers`), part of `make test` and CI: on 2 cores the first build of
the images took 8 minutes (later ones are cached) and the run 10 more. Alone:
pytest -m containers tests/platform/test_compose_run.py; CINESENSE_CONTAINER_TESTS=0 skips it.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts" / "podman"))
import compose  # noqa: E402  (scripts/podman/compose.py)

pytestmark = pytest.mark.containers

TOOLS = ("podman", "podman-compose", "debootstrap", "runc")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _secrets() -> dict[str, str]:
    names = [
        "POSTGRES_PASSWORD",
        "MLFLOW_DB_PASSWORD",
        "AIRFLOW_DB_PASSWORD",
        "CINESENSE_STORAGE__ACCESS_KEY_ID",
        "CINESENSE_STORAGE__SECRET_ACCESS_KEY",
        "CINESENSE_STACK__MLFLOW_ADMIN_PASSWORD",
        "CINESENSE_STACK__MLFLOW_SECRET_KEY",
        "CINESENSE_STACK__AIRFLOW_ADMIN_PASSWORD",
        "CINESENSE_STACK__AIRFLOW_JWT_SECRET",
        "CINESENSE_STACK__AIRFLOW_SECRET_KEY",
        "CINESENSE_SERVE__ADMIN_API_KEY",
    ]
    values = {name: secrets.token_hex(16) for name in names}
    values["AIRFLOW_FERNET_KEY"] = base64.urlsafe_b64encode(os.urandom(32)).decode()
    return values


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    if os.environ.get("CINESENSE_CONTAINER_TESTS") == "0":
        pytest.skip("container run switched off (CINESENSE_CONTAINER_TESTS=0)")
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"needs {', '.join(missing)} (deps/apt-test.txt installs them)")
    build = subprocess.run(
        ["bash", str(ROOT / "scripts/podman/build.sh")],
        capture_output=True,
        text=True,
        timeout=3600,
        check=False,
    )
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-5000:]

    directory = tmp_path_factory.mktemp("compose")
    shutil.copy(ROOT / "docker-compose.yml", directory)
    shutil.copytree(ROOT / "postgres", directory / "postgres")
    port = _free_port()
    values = {
        **_secrets(),
        "CINESENSE_HTTP_BIND": "127.0.0.1",
        "CINESENSE_HTTP_PORT": str(port),
    }
    project = f"cinesense-test-{secrets.token_hex(3)}"
    saved = dict(os.environ)
    os.environ.update(values)
    try:
        compose.up(project, directory)
        yield {
            **values,
            "project": project,
            "dir": str(directory),
            "url": f"http://127.0.0.1:{port}",
        }
    finally:
        with contextlib.suppress(compose.ComposeError):
            compose.down(project, directory, "-v")
        os.environ.clear()
        os.environ.update(saved)


def _champion(stack: dict[str, str], bundle: Path, home: Path) -> str:
    """A first champion. The shipped bundle through the `model-init` one-shot (what `make up`
    runs too) when the package has one; else the tiny test bundle, registered through nginx
    from this machine (MLflow proxies its upload into the object store) and made champion."""
    if (ROOT / "src/cinesense/default_model/manifest.json").exists():
        compose.wait_completed(stack["project"], "model-init", timeout_s=600)
        return compose.logs(stack["project"], "model-init", lines=1).strip()
    import mlflow

    from cinesense.config import MlflowSettings, Settings
    from cinesense.registry import CHAMPION, connect, experiment_id, register_bundle

    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        home=home,
        mlflow=MlflowSettings(tracking_uri=f"{stack['url']}/mlflow"),
    )
    os.environ["MLFLOW_TRACKING_USERNAME"] = "admin"
    os.environ["MLFLOW_TRACKING_PASSWORD"] = stack["CINESENSE_STACK__MLFLOW_ADMIN_PASSWORD"]
    client = connect(settings)
    with mlflow.start_run(experiment_id=experiment_id(settings), run_name="compose-test") as run:
        mlflow.set_tag("cinesense.source", "tests/platform/test_compose_run.py")
    version = register_bundle(settings, run.info.run_id, bundle, {})
    client.set_registered_model_alias(settings.mlflow.model_name, CHAMPION, version)
    return version


def _predict(url: str) -> dict[str, object]:
    deadline = time.monotonic() + 180
    while True:
        response = httpx.post(
            f"{url}/api/v1/predict", json={"texts": ["배우들 연기가 정말 좋았어요"]}, timeout=30
        )
        if response.status_code == 200 or time.monotonic() > deadline:
            break
        time.sleep(5)
    assert response.status_code == 200, response.text
    return response.json()


def test_every_service_is_healthy(stack: dict[str, str]) -> None:
    spec = compose.services(Path(stack["dir"]))
    for service, definition in spec.items():
        if "healthcheck" in definition:
            compose.wait_healthy(stack["project"], service, timeout_s=60)


def test_prediction_through_nginx_and_data_kept_across_down_and_up(
    stack: dict[str, str], tiny_bundle: Path, tmp_path: Path
) -> None:
    _champion(stack, tiny_bundle, tmp_path)
    first = _predict(stack["url"])
    assert first["predictions"][0]["label"] in {"positive", "negative", "uncertain"}  # type: ignore[index]
    analysis = httpx.post(
        f"{stack['url']}/api/v1/analyze",
        json={"reviews": [{"text": "배우들 연기가 정말 좋았어요"}, {"text": "너무 지루했다"}]},
        timeout=120,
    )
    assert analysis.status_code == 200, analysis.text
    assert analysis.json()["keyword_method"] == "okt"  # the image's slim JRE runs KoNLPy

    directory = Path(stack["dir"])
    compose.down(stack["project"], directory)
    compose.up(stack["project"], directory)
    again = _predict(stack["url"])
    assert again["model_version"] == first["model_version"]


def test_airflow_rest_api_triggers_a_dag_through_nginx(stack: dict[str, str]) -> None:
    base = f"{stack['url']}/airflow"
    token = httpx.post(
        f"{base}/auth/token",
        json={"username": "admin", "password": stack["CINESENSE_STACK__AIRFLOW_ADMIN_PASSWORD"]},
        timeout=30,
    )
    assert token.status_code in (200, 201), token.text
    headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
    dag = "score_reviews"
    httpx.patch(
        f"{base}/api/v2/dags/{dag}", json={"is_paused": False}, headers=headers, timeout=30
    ).raise_for_status()
    run = httpx.post(
        f"{base}/api/v2/dags/{dag}/dagRuns",
        json={"logical_date": None, "conf": {}},
        headers=headers,
        timeout=30,
    )
    assert run.status_code == 200, run.text
    run_id = run.json()["dag_run_id"]
    deadline = time.monotonic() + 300
    state = "queued"
    while state in ("queued", "running") and time.monotonic() < deadline:
        time.sleep(5)
        state = httpx.get(
            f"{base}/api/v2/dags/{dag}/dagRuns/{run_id}", headers=headers, timeout=30
        ).json()["state"]
    assert state == "success", json.dumps({"state": state, "run": run_id})


def test_ui_page_renders_in_chromium(stack: dict[str, str], tmp_path: Path) -> None:
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("needs Debian's chromium (.ci/run installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium)
        page = browser.new_page()
        page.goto(stack["url"] + "/", timeout=60_000)
        page.get_by_text("리뷰 분석").first.wait_for(timeout=60_000)
        page.locator("textarea").first.wait_for(timeout=60_000)
        page.screenshot(path=str(tmp_path / "ui.png"))
        browser.close()
