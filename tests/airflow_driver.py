"""Runs inside the Airflow virtualenv (.venv-airflow) for the DAG tests
(tests/code/test_dags.py, tests/services/test_dags_runs.py).

Airflow and the service pin different FastAPI versions, so Airflow lives in its own
virtualenv and the tests drive it through this script in a subprocess; the test process
never imports Airflow. The environment (AIRFLOW_HOME, the SQLite metadata database, the
DAGs folder, CINESENSE_*) comes from the test. The result is printed as one JSON line
after ``RESULT_MARK``.

    python tests/airflow_driver.py inspect
        parse the DAGs folder with the network blocked: import errors, parse times,
        heavy modules imported at parse time, and every DAG's schedule, tasks, edges and
        Params.
    python tests/airflow_driver.py run DAG_ID [CONF_JSON]
        one real run with ``dag.test()``: the run's state, every task instance, the
        return values of the tasks and the asset events the run produced.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from pathlib import Path
from typing import Any

# Run as a script, Python puts tests/ first on sys.path, where the tests/code/ folder would
# shadow the standard library's ``code`` module that Airflow imports.
if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    del sys.path[0]

RESULT_MARK = "CINESENSE_DRIVER_RESULT "
HEAVY = (
    "torch",
    "transformers",
    "tokenizers",
    "pandas",
    "pyarrow",
    "mlflow",
    "sklearn",
    "onnxruntime",
    "onnx",
    "boto3",
    "playwright",
    "matplotlib",
    "cinesense",
)
# The DAG Params are generated from the settings fields (cinesense.options), so these
# light modules (pydantic only) load at parse time; the rest of cinesense may not.
LIGHT = {"cinesense", "cinesense.config", "cinesense.errors", "cinesense.options"}


def emit(data: dict[str, Any]) -> None:
    sys.stdout.flush()
    print(RESULT_MARK + json.dumps(data, default=str), flush=True)  # noqa: T201


def dags_folder() -> Path:
    return Path(os.environ["AIRFLOW__CORE__DAGS_FOLDER"])


def dag_bag() -> Any:
    """The DAGs folder parsed as the DAG processor does (the bundle on sys.path)."""
    from airflow.dag_processing.dagbag import BundleDagBag

    folder = str(dags_folder())
    return BundleDagBag(dag_folder=folder, bundle_path=folder, bundle_name="dags-folder")


def block_network() -> list[str]:
    """Any connection attempt while parsing is recorded and refused."""
    attempts: list[str] = []

    def refuse(self: socket.socket, address: Any, *args: Any) -> None:
        attempts.append(str(address))
        raise OSError("network blocked while parsing DAG files")

    def no_lookup(host: Any, *args: Any, **kwargs: Any) -> Any:
        attempts.append(f"dns:{host}")
        raise OSError("network blocked while parsing DAG files")

    socket.socket.connect = refuse  # type: ignore[method-assign]
    socket.socket.connect_ex = refuse  # type: ignore[method-assign, assignment]
    socket.getaddrinfo = no_lookup  # type: ignore[assignment]
    return attempts


def describe_task(task: Any) -> dict[str, Any]:
    from airflow.sdk.definitions.mappedoperator import MappedOperator

    mapped = isinstance(task, MappedOperator)
    return {
        "upstream": sorted(task.upstream_task_ids),
        "downstream": sorted(task.downstream_task_ids),
        "mapped": mapped,
        "retries": task.retries,
        "retry_exponential_backoff": task.retry_exponential_backoff,
        "max_active_tis_per_dag": task.max_active_tis_per_dag,
        "trigger_rule": str(task.trigger_rule),
        "outlets": sorted(getattr(o, "name", str(o)) for o in task.outlets),
        "operator": type(task).__name__ if not mapped else task.operator_class.__name__,
        "has_failure_callback": bool(task.on_failure_callback),
    }


def asset_names(condition: Any) -> list[str]:
    if hasattr(condition, "objects"):  # AssetAll / AssetAny
        return [name for part in condition.objects for name in asset_names(part)]
    return [condition.name]


def describe_dag(dag: Any) -> dict[str, Any]:
    timetable = dag.timetable
    inner = getattr(timetable, "timetable", timetable)
    asset_condition = getattr(timetable, "asset_condition", None)
    assets = sorted(asset_names(asset_condition)) if asset_condition is not None else []
    return {
        "timetable": type(timetable).__name__,
        "cron": getattr(inner, "_expression", None) or getattr(inner, "expression", None),
        "timezone": str(getattr(inner, "timezone", None) or getattr(inner, "_timezone", "")),
        "assets": assets,
        "catchup": dag.catchup,
        "max_active_runs": dag.max_active_runs,
        "tasks": {task.task_id: describe_task(task) for task in dag.tasks},
        "params": {
            name: {
                "default": param.value if param.has_value else None,
                "schema": param.schema,
                "description": param.description,
            }
            for name, param in dag.params.items()
        },
    }


def inspect() -> None:
    before = set(sys.modules)
    attempts = block_network()
    started = time.perf_counter()
    from airflow.dag_processing.dagbag import BundleDagBag  # noqa: F401 - timed import

    import_seconds = time.perf_counter() - started
    already = set(sys.modules)
    started = time.perf_counter()
    bag = dag_bag()
    parse_seconds = time.perf_counter() - started
    loaded = set(sys.modules) - already
    heavy = sorted(
        name
        for name in loaded
        if name.split(".")[0] in HEAVY and name.split(".")[0] != "airflow" and name not in LIGHT
    )
    emit(
        {
            "import_errors": {str(k): str(v) for k, v in bag.import_errors.items()},
            "files": sorted(Path(f).name for f in {d.fileloc for d in bag.dags.values()}),
            "network_attempts": attempts,
            "heavy_modules": heavy,
            "heavy_before_airflow": sorted(n for n in before if n.split(".")[0] in HEAVY),
            "airflow_import_s": round(import_seconds, 2),
            "parse_s": round(parse_seconds, 2),
            "dags": {dag_id: describe_dag(dag) for dag_id, dag in bag.dags.items()},
        }
    )


def ensure_database() -> None:
    from airflow.utils.db import initdb

    marker = Path(os.environ["AIRFLOW_HOME"]) / ".db-ready"
    if not marker.exists():
        initdb()
        marker.touch()


def run(dag_id: str, conf: dict[str, Any]) -> None:
    from airflow.sdk.exceptions import ParamValidationError

    ensure_database()
    bag = dag_bag()
    if bag.import_errors:
        emit({"error": "import errors", "import_errors": bag.import_errors})
        return
    dag = bag.dags[dag_id]
    started = time.perf_counter()
    try:
        dag_run = dag.test(run_conf=conf or None)
    except ParamValidationError as error:
        emit({"error": "params", "message": str(error)})
        return
    seconds = time.perf_counter() - started
    emit({**collect(dag_run), "seconds": round(seconds, 1)})


def collect(dag_run: Any) -> dict[str, Any]:
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        instances = [
            {
                "task_id": ti.task_id,
                "map_index": ti.map_index,
                "state": str(ti.state),
                "try_number": ti.try_number,
                "rendered_map_index": ti.rendered_map_index,
            }
            for ti in sorted(
                dag_run.get_task_instances(session=session), key=lambda t: (t.task_id, t.map_index)
            )
        ]
        xcoms: dict[str, Any] = {}
        query = XComModel.get_many(
            run_id=dag_run.run_id, dag_ids=dag_run.dag_id, key="return_value"
        )
        for row in session.scalars(query):
            value = XComModel.deserialize_value(row)
            name = row.task_id if row.map_index < 0 else f"{row.task_id}[{row.map_index}]"
            xcoms[name] = value
        events = [
            {"asset": name, "extra": event.extra, "task": event.source_task_id}
            for event, name in session.execute(
                select(AssetEvent, AssetModel.name)
                .join(AssetModel, AssetModel.id == AssetEvent.asset_id)
                .where(AssetEvent.source_run_id == dag_run.run_id)
            )
        ]
    return {
        "run_id": dag_run.run_id,
        "state": str(dag_run.state),
        "tasks": instances,
        "xcoms": xcoms,
        "asset_events": events,
    }


def main() -> None:
    command = sys.argv[1]
    if command == "inspect":
        inspect()
    elif command == "run":
        run(sys.argv[2], json.loads(sys.argv[3]) if len(sys.argv) > 3 else {})
    else:
        raise SystemExit(f"unknown command {command!r}")


if __name__ == "__main__":
    main()
