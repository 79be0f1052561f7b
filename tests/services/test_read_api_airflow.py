"""The job endpoints against a real Airflow 3 api-server on loopback (from .venv-airflow,
SQLite metadata, the project's DAGs serialized, SimpleAuthManager): the service gets a
JWT, triggers crawl_reviews and train_model with their conf, and reads the runs' state.
No scheduler runs, so the runs stay queued: what is tested is the REST API v2 exchange."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from cinesense.config import AirflowApiSettings, ServeSettings, Settings
from cinesense.serving.app import create_app
from tests.dag_support import AIRFLOW_PYTHON, airflow_environment, require_airflow
from tests.servers import free_port
from tests.ui_stack import _process_env, with_routers

pytestmark = pytest.mark.slow
USER, PASSWORD, ADMIN = "cinesense", "airflow-test-password", "jobs-admin"


@pytest.fixture(scope="module")
def airflow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    require_airflow()
    home = tmp_path_factory.mktemp("airflow")
    passwords = home / "passwords.json"
    passwords.write_text(json.dumps({USER: PASSWORD}))
    env = airflow_environment(
        home,
        AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS=f"{USER}:admin",
        AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE=str(passwords),
        AIRFLOW__API_AUTH__JWT_SECRET="jobs-test-jwt-secret",
        AIRFLOW__API__SECRET_KEY="jobs-test-secret-key",
    )
    airflow = str(AIRFLOW_PYTHON.parent / "airflow")
    for step in (["db", "migrate"], ["dags", "reserialize"]):
        subprocess.run([airflow, *step], env=env, check=True, capture_output=True, timeout=300)
    port = free_port()
    command = [airflow, "api-server", "--host", "127.0.0.1", "--port", str(port)]
    url = f"http://127.0.0.1:{port}"
    with _process_env(command, f"{url}/api/v2/monitor/health", env, home / "api-server.log"):
        yield url


def service(tmp_path: Path, bundle: Path, airflow: str, password: str = PASSWORD) -> TestClient:
    settings = Settings(
        home=tmp_path,
        serve=ServeSettings(bundle_dir=bundle, admin_api_key=ADMIN, onnx_threads=1),
        airflow=AirflowApiSettings(base_url=airflow, username=USER, password=password),
    )
    return TestClient(with_routers(create_app(settings), settings))


def test_crawl_one_movie_then_read_the_run(airflow: str, tmp_path: Path, tiny_bundle: Path) -> None:
    with service(tmp_path, tiny_bundle, airflow) as client:
        body = {"source": "megabox", "movie_id": "26000100", "title": "푸른 항구의 여름"}
        started = client.post("/v1/jobs/crawl", json=body)
        assert started.status_code == 202, started.text
        run = started.json()
        assert run["dag_id"] == "crawl_reviews" and run["state"] == "queued" and not run["done"]
        assert run["airflow_path"] == f"dags/crawl_reviews/runs/{run['run_id']}"
        state = client.get(f"/v1/jobs/crawl/{run['run_id']}")
        assert state.status_code == 200 and state.json()["run_id"] == run["run_id"]
        missing = client.get("/v1/jobs/crawl/manual__1999-01-01")
        assert missing.status_code == 404 and "not found" in missing.json()["error"]


def test_retrain_with_params(airflow: str, tmp_path: Path, tiny_bundle: Path) -> None:
    with service(tmp_path, tiny_bundle, airflow) as client:
        params = {"epochs": 1, "max_minutes": 5, "include_crawled": False}
        started = client.post("/v1/jobs/train", json=params, headers={"X-API-Key": ADMIN})
        assert started.status_code == 202, started.text
        assert started.json()["dag_id"] == "train_model"
        refused = client.post("/v1/jobs/train", json={}, headers={"X-API-Key": "wrong"})
        assert refused.status_code == 401


def test_wrong_airflow_credentials_are_named(
    airflow: str, tmp_path: Path, tiny_bundle: Path
) -> None:
    with service(tmp_path, tiny_bundle, airflow, password="wrong") as client:
        response = client.post("/v1/jobs/crawl", json={"source": "cgv", "movie_id": "30000100"})
    assert response.status_code == 502
    assert "refused the service's credentials" in response.json()["error"]
