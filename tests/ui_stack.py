"""The analysis UI's world on loopback, for its tests and benchmark: a review store filled
from the fake site and scored by a bundle, the API (uvicorn) serving that bundle,
Streamlit, and nginx in front of both (Debian's nginx, unprivileged)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from fastapi import FastAPI

from tests.servers import _answers, free_port

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
SCORED = ("26000100", "26000200")  # Megabox movies crawled and scored
UNSCORED = "25009900"  # crawled after scoring: no predictions yet


def service_app() -> FastAPI:
    """``create_app()`` with the read and job routers (until the app factory includes them)."""
    from cinesense.config import get_settings
    from cinesense.serving.app import create_app

    settings = get_settings()
    app = create_app(settings)
    with_routers(app, settings)
    return app


def with_routers(app: FastAPI, settings: object) -> FastAPI:
    from cinesense.serving.routers import jobs, read

    app.state.settings = settings
    included = [getattr(route, "original_router", None) for route in app.routes]
    paths = {getattr(route, "path", "") for route in app.routes}
    for router, path in ((read.router, "/v1/movies"), (jobs.router, "/v1/jobs/crawl")):
        if all(router is not other for other in included) and path not in paths:
            app.include_router(router)
    return app


def populate(settings: object, site_url: str, bundle: Path) -> None:
    """Crawl two Megabox movies from the fake site, score them with ``bundle``, then crawl
    a third one that stays unscored."""
    from cinesense.crawl.jobs import crawl_movie
    from cinesense.model.onnx_predict import OnnxPredictor
    from cinesense.pipelines.score import score_new_reviews, write_movie_aggregates

    for movie_id in SCORED:
        crawl_movie(settings, "megabox", movie_id)  # type: ignore[arg-type]
    predictor = OnnxPredictor.from_bundle(bundle, 1)
    score_new_reviews(settings, predictor=predictor, model_version="local")  # type: ignore[arg-type]
    write_movie_aggregates(settings)  # type: ignore[arg-type]
    crawl_movie(settings, "megabox", UNSCORED)  # type: ignore[arg-type]


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "CINESENSE_"))}
    env.update(extra)
    return env


@contextmanager
def api_server(home: Path, bundle: Path, log: Path, **env: str) -> Iterator[str]:
    port = free_port()
    command = [str(BIN / "python"), "-m", "uvicorn", "tests.ui_stack:service_app", "--factory"]
    command += ["--host", "127.0.0.1", "--port", str(port)]
    variables = clean_env(
        CINESENSE_HOME=str(home),
        CINESENSE_SERVE__BUNDLE_DIR=str(bundle),
        CINESENSE_SERVE__ONNX_THREADS="1",
        PYTHONPATH=str(ROOT),
        **env,
    )
    with _process_env(command, f"http://127.0.0.1:{port}/ready", variables, log):
        yield f"http://127.0.0.1:{port}"


@contextmanager
def streamlit_server(api_url: str, log: Path, **env: str) -> Iterator[str]:
    from cinesense.config import Settings

    port = free_port()
    command = [str(BIN / "streamlit"), "run", str(ROOT / "streamlit/app.py")]
    command += ["--server.address", "127.0.0.1", "--server.port", str(port)]
    command += ["--server.headless", "true", "--browser.gatherUsageStats", "false"]
    command += ["--server.maxUploadSize", str(Settings().ui.upload_max_mb)]
    command += ["--client.toolbarMode", "viewer"]
    variables = clean_env(CINESENSE_UI__API_URL=api_url, **env)
    with _process_env(command, f"http://127.0.0.1:{port}/_stcore/health", variables, log):
        yield f"http://127.0.0.1:{port}"


@contextmanager
def nginx_server(directory: Path, ui_url: str, api_url: str, **options: object) -> Iterator[str]:
    from cinesense.config import NginxSettings, Settings
    from cinesense.frontdoor import standalone_conf

    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    port = free_port()
    dead = f"127.0.0.1:{free_port()}"  # MLflow and Airflow are not part of these tests
    settings = Settings(
        nginx=NginxSettings(
            listen_port=port,
            server_name="localhost",
            ui_upstream=ui_url.removeprefix("http://"),
            api_upstream=api_url.removeprefix("http://"),
            mlflow_upstream=dead,
            airflow_upstream=dead,
            access_log=str(directory / "access.log"),
            error_log=str(directory / "error.log"),
            **options,  # type: ignore[arg-type]
        )
    )
    directory.mkdir(parents=True, exist_ok=True)
    conf = directory / "nginx.conf"
    conf.write_text(standalone_conf(settings, directory))
    command = [nginx, "-p", str(directory), "-c", str(conf), "-g", "daemon off;"]
    with _process_env(command, f"http://127.0.0.1:{port}/api/health", {}, directory / "out.log"):
        yield f"http://127.0.0.1:{port}"


@contextmanager
def _process_env(command: list[str], ready: str, env: dict[str, str], log: Path) -> Iterator[None]:
    """Run ``command`` with exactly ``env`` (or a clean copy of ours) until ``ready`` answers."""
    output = open(log, "wb")  # noqa: SIM115
    process = subprocess.Popen(
        command, cwd=ROOT, stdout=output, stderr=subprocess.STDOUT, env=env or clean_env()
    )
    try:
        deadline = time.monotonic() + 180
        while not _answers(ready):
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError(f"{command[0]} did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.3)
        yield
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        output.close()
