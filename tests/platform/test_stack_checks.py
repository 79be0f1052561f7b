"""What `make up` refuses before starting anything, and what `cinesense stack run` renders;
fast (no service is started)."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
from pathlib import Path

import pytest

from cinesense.config import Settings
from cinesense.stack import supervisor
from cinesense.stack.secrets import ensure_secrets, read_env_file, with_secrets
from cinesense.stack.services import launch

pytestmark = pytest.mark.platform
ROOT = Path(__file__).resolve().parents[2]
CINESENSE = ROOT / ".venv" / "bin" / "cinesense"


def _env(home: Path, **extra: str) -> dict[str, str]:
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("CINESENSE_")}
    return {**inherited, "CINESENSE_HOME": str(home), **extra}


def test_a_port_in_use_is_refused_naming_the_setting(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        result = subprocess.run(
            [str(CINESENSE), "stack", "up"],
            env=_env(tmp_path / "home", CINESENSE_STACK__FRONTDOOR_PORT=str(port)),
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    assert result.returncode == 1
    assert f"port {port} (nginx) is in use" in result.stderr
    assert "CINESENSE_STACK__FRONTDOOR_PORT" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "home" / "stack" / "supervisord.pid").exists()


def test_secrets_are_random_private_and_kept(tmp_path: Path) -> None:
    first, second = Settings(home=tmp_path / "a"), Settings(home=tmp_path / "b")
    path, created = ensure_secrets(first)
    assert created and stat.S_IMODE(path.stat().st_mode) == 0o600
    values = read_env_file(path)
    assert len(values) == 8 and all(len(v) >= 16 for v in values.values())
    assert ensure_secrets(first) == (path, False) and read_env_file(path) == values
    other, _ = ensure_secrets(second)
    assert set(read_env_file(other).values()).isdisjoint(values.values())


def test_each_service_runs_from_the_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CINESENSE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("CINESENSE_STACK__MLFLOW_PORT", "15123")
    ensure_secrets(Settings())
    settings = with_secrets(Settings())
    mlflow = launch(settings, "mlflow")
    assert mlflow.argv[mlflow.argv.index("--port") + 1] == "15123"
    assert "basic-auth" in mlflow.argv and mlflow.env["MLFLOW_AUTH_ADMIN_PASSWORD"]
    assert mlflow.argv[mlflow.argv.index("--backend-store-uri") + 1].startswith("sqlite:///")
    database = "postgresql+psycopg2://mlflow:pw@postgres:5432/mlflow"
    monkeypatch.setenv("CINESENSE_STACK__MLFLOW_DATABASE_URI", database)
    on_postgres = launch(with_secrets(Settings()), "mlflow")
    assert on_postgres.argv[on_postgres.argv.index("--backend-store-uri") + 1] == database
    scheduler = launch(settings, "airflow-scheduler")
    assert scheduler.argv[-1] == "scheduler"
    assert scheduler.env["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"
    assert scheduler.env["CINESENSE_MLFLOW__TRACKING_URI"] == "http://127.0.0.1:15123/mlflow"
    config = supervisor.render(settings)
    assert "[program:airflow-scheduler]" in config and "stack run airflow-scheduler" in config
    assert ".venv-airflow/bin/cinesense stack run airflow-scheduler" in config
    for value in read_env_file(tmp_path / "home" / "stack" / "secrets.env").values():
        assert value not in config  # the supervisor config holds no secret


def test_an_unknown_service_is_a_clear_error(tmp_path: Path) -> None:
    result = subprocess.run(
        [str(CINESENSE), "stack", "run", "postgres"],
        env=_env(tmp_path / "home"),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1 and "Unknown service 'postgres'" in result.stderr
