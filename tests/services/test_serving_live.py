"""The service as deployed: uvicorn on loopback serving the champion of a real MLflow server
(artifacts on a real S3-compatible server); a champion change under concurrent load; a
graceful stop."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from cinesense.config import MlflowSettings, Settings
from cinesense.registry import CHAMPION, connect, experiment_id, register_bundle
from tests.servers import create_bucket, free_port, mlflow_server, moto_server

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def tracking_uri(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with moto_server() as s3:
        create_bucket(s3, "mlflow")
        with mlflow_server(tmp_path_factory.mktemp("mlflow"), s3, "mlflow") as url:
            yield url


def register(settings: Settings, bundle: Path) -> str:
    import mlflow

    connect(settings)
    with mlflow.start_run(experiment_id=experiment_id(settings)) as run:
        pass
    return register_bundle(settings, run.info.run_id, bundle, {"test_accuracy": "0.8"})


def start_service(home: Path, tracking_uri: str, log: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "CINESENSE_"))}
    env.update(
        CINESENSE_HOME=str(home),
        CINESENSE_MLFLOW__TRACKING_URI=tracking_uri,
        CINESENSE_MLFLOW__MODEL_NAME="live",
        CINESENSE_SERVE__POLL_INTERVAL_S="0.5",
        CINESENSE_SERVE__ONNX_THREADS="1",
    )
    command = [sys.executable, "-m", "uvicorn", "main:app", "--app-dir", "fastapi"]
    command += ["--host", "127.0.0.1", "--port", str(port), "--timeout-graceful-shutdown", "10"]
    with open(log, "wb") as output:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=output, stderr=output)
    return process, f"http://127.0.0.1:{port}"


def wait_until_ready(url: str, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text()
        try:
            if httpx.get(f"{url}/ready", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    raise AssertionError(f"the service did not become ready:\n{log.read_text()}")


def test_champion_swap_under_load_drops_nothing(
    tracking_uri: str, tmp_path: Path, tiny_bundle: Path
) -> None:
    settings = Settings(
        home=tmp_path, mlflow=MlflowSettings(tracking_uri=tracking_uri, model_name="live")
    )
    client = connect(settings)
    first, second = register(settings, tiny_bundle), register(settings, tiny_bundle)
    client.set_registered_model_alias("live", CHAMPION, first)

    log = tmp_path / "service.log"
    process, url = start_service(tmp_path / "service-home", tracking_uri, log)
    try:
        wait_until_ready(url, process, log)
        versions: Counter[str] = Counter()
        failures: list[str] = []
        stop = threading.Event()

        def load() -> None:
            with httpx.Client(base_url=url, timeout=30) as http:
                while not stop.is_set():
                    try:
                        response = http.post("/v1/predict", json={"texts": ["정말 재밌다"]})
                        if response.status_code == 200:
                            versions[response.json()["model_version"]] += 1
                        else:
                            failures.append(f"{response.status_code} {response.text}")
                    except httpx.HTTPError as error:
                        failures.append(repr(error))

        workers = [threading.Thread(target=load) for _ in range(8)]
        for worker in workers:
            worker.start()
        time.sleep(1.5)
        client.set_registered_model_alias("live", CHAMPION, second)
        deadline = time.monotonic() + 60
        while versions[second] < 50 and time.monotonic() < deadline:
            time.sleep(0.2)
        stop.set()
        for worker in workers:
            worker.join()

        assert failures == []
        assert versions[first] > 0 and versions[second] >= 50, versions
        model = httpx.get(f"{url}/v1/model").json()
        assert model["version"] == second and "champion" in model["aliases"]
        metrics = httpx.get(f"{url}/metrics").text
        assert f'cinesense_model_info{{quantization="int8",version="{second}"}} 1.0' in metrics
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=30)

    # uvicorn finishes in-flight work, runs the shutdown, then re-raises the signal
    assert code in (0, -signal.SIGTERM), log.read_text()
    entries = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    messages = [entry["message"] for entry in entries]
    assert "model swapped" in messages and "service stopped" in messages
    assert messages.index("service stopped") < messages.index("Application shutdown complete.")
    requests = [e for e in entries if e["message"] == "request" and e["route"] == "/v1/predict"]
    assert requests and all(len(e["request_id"]) == 32 for e in requests)
    assert "정말 재밌다" not in log.read_text()  # no review text in logs by default
