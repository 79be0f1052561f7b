"""Driving the Airflow DAGs from tests: Airflow runs in its own virtualenv.

Airflow 3 pins FastAPI below the version the service uses, so ``make`` installs it in
``.venv-airflow`` (see requirements-airflow.txt) and these tests run
``tests/airflow_driver.py`` there, in a subprocess with a fresh SQLite metadata database
per test module. The test process itself never imports Airflow.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
AIRFLOW_PYTHON = Path(
    os.environ.get("CINESENSE_AIRFLOW_PYTHON", ROOT / ".venv-airflow" / "bin" / "python")
)
DAGS_FOLDER = ROOT / "airflow" / "dags"
DRIVER = Path(__file__).with_name("airflow_driver.py")
RESULT_MARK = "CINESENSE_DRIVER_RESULT "


def require_airflow() -> None:
    if AIRFLOW_PYTHON.exists():
        return
    message = (
        f"{AIRFLOW_PYTHON} not found: the DAG tests need the Airflow virtualenv "
        "(`make setup-airflow`, which `make test` runs)."
    )
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def airflow_environment(airflow_home: Path, **extra: str) -> dict[str, str]:
    """A clean environment for one Airflow home: no inherited Airflow, MLflow, AWS or
    cinesense variables, SQLite metadata, the project's DAGs, one-second retry delays."""
    inherited = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AIRFLOW", "AWS_", "MLFLOW_", "CINESENSE_"))
    }
    airflow_home.mkdir(parents=True, exist_ok=True)
    return {
        **inherited,
        "AIRFLOW_HOME": str(airflow_home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_FOLDER),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{airflow_home / 'airflow.db'}",
        "AIRFLOW__CORE__DEFAULT_TASK_RETRY_DELAY": "1",
        **extra,
    }


def drive(env: dict[str, str], *args: str, timeout: float = 600) -> tuple[dict[str, Any], str]:
    """Run the driver; its JSON result and everything it printed (the task logs)."""
    require_airflow()
    process = subprocess.run(
        [str(AIRFLOW_PYTHON), str(DRIVER), *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=env["AIRFLOW_HOME"],  # no .env file of the checkout is read
        timeout=timeout,
        check=False,
    )
    output = process.stdout + process.stderr
    lines = [line for line in process.stdout.splitlines() if line.startswith(RESULT_MARK)]
    assert process.returncode == 0 and lines, f"driver {args} failed:\n{output[-6000:]}"
    return json.loads(lines[-1][len(RESULT_MARK) :]), output


def run_dag(
    env: dict[str, str], dag_id: str, conf: dict[str, Any] | None = None
) -> tuple[dict[str, Any], str]:
    return drive(env, "run", dag_id, json.dumps(conf or {}))


def task_states(result: dict[str, Any]) -> dict[str, str]:
    """``task`` or ``task[map_index]`` → state, e.g. ``{"crawl_movie[0]": "success"}``."""
    return {
        (t["task_id"] if t["map_index"] < 0 else f"{t['task_id']}[{t['map_index']}]"): t["state"]
        for t in result["tasks"]
    }
