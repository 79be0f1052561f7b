"""Retrain the sentiment model, quantize it and promote it only if it wins.

Runs weekly, when the review asset changes and enough new labelled reviews have arrived
since the data of the last registered version (the ``min_new_reviews`` threshold), and by
hand with the Params below. Steps: check → build the dataset (the corpus plus crawled
reviews that may train models) → fine-tune → evaluate beside the TF-IDF baseline → log
the run in MLflow → export and INT8-quantize → register the bundle (alias
``challenger``) → gate against the ``champion`` → notify (Slack when the
``cinesense_slack`` connection exists, else the task log) whether the new version became
champion and why. Each run keeps its files under ``CINESENSE_HOME/runs/train_model/``;
tasks hand each other those paths, the MLflow run id and the version.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path
from typing import Any

from airflow.sdk import (
    AssetOrTimeSchedule,
    CronTriggerTimetable,
    Param,
    dag,
    get_current_context,
    task,
)
from cinesense_airflow import (
    RETRY,
    REVIEWS,
    START_DATE,
    TIMEZONE,
    cinesense_settings,
    notify,
    notify_failure,
    option_params,
    option_values,
    run_dir,
)

log = logging.getLogger("cinesense.airflow")
SERVER_RETRIES = {"retries": 2, **RETRY}  # the MLflow server may be restarting


def _settings(torch_threads: bool = False):
    params = get_current_context()["params"]
    return cinesense_settings(torch_threads, train=option_values("train", params))


def _paths(settings) -> dict[str, Path]:
    context = get_current_context()
    base = run_dir(settings, context["dag"].dag_id, context["run_id"])
    return {
        "dataset": base / "dataset",
        "model": base / "sentiment",
        "report": base / "sentiment" / "evaluation.json",
        "bundle": base / "serving",
    }


@dag(
    dag_id="train_model",
    description="Retrain, evaluate, quantize, register and gate the sentiment model",
    schedule=AssetOrTimeSchedule(
        timetable=CronTriggerTimetable("0 3 * * 1", timezone=TIMEZONE), assets=REVIEWS
    ),
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args={"execution_timeout": timedelta(hours=6), "on_failure_callback": notify_failure},
    tags=["cinesense", "training"],
    doc_md=__doc__,
    params={
        **option_params("train"),
        "include_crawled": Param(
            True,
            type="boolean",
            title="Include crawled reviews",
            description="Add crawled reviews that may train models (CGV's may not, unless "
            "an operator allowed it) to the corpus.",
        ),
        "promotion_margin": Param(
            None,
            type=["null", "number"],
            minimum=0,
            maximum=0.5,
            title="Promotion margin",
            description="Accuracy gain (fraction, 0.002 = 0.2 points) the new version needs "
            "over the champion. Empty: CINESENSE_MLFLOW__PROMOTION_MARGIN.",
        ),
        "min_new_reviews": Param(
            500,
            type="integer",
            minimum=1,
            title="New reviews to retrain",
            description="Runs started by new crawled reviews train only once this many new "
            "labelled reviews arrived since the data of the last registered version.",
        ),
    },
)
def train_model() -> None:
    @task.short_circuit
    def check_new_reviews() -> bool:
        from cinesense.pipelines.train import should_train

        context = get_current_context()
        run_type = context["dag_run"].run_type
        go, reason = should_train(
            cinesense_settings(),
            str(getattr(run_type, "value", run_type)),
            context["params"]["min_new_reviews"],
        )
        log.info("%s", reason)
        return go

    @task
    def build_dataset() -> str:
        from cinesense.pipelines.dataset import build_training_dataset

        settings = _settings()
        target = _paths(settings)["dataset"]
        include = get_current_context()["params"]["include_crawled"]
        build_training_dataset(settings, target, include_crawled=include)
        return str(target)

    @task
    def train(dataset_dir: str) -> str:
        from cinesense.pipelines.train import train_sentiment

        settings = _settings(torch_threads=True)
        target = _paths(settings)["model"]
        train_sentiment(settings, Path(dataset_dir), target, progress=False)
        return str(target)

    @task
    def evaluate(model_dir: str, dataset_dir: str) -> str:
        from cinesense.pipelines.train import evaluate_sentiment

        settings = _settings(torch_threads=True)
        report = _paths(settings)["report"]
        evaluate_sentiment(settings, Path(model_dir), Path(dataset_dir), report)
        return str(report)

    @task(**SERVER_RETRIES)
    def register_run(model_dir: str, report: str, dataset_dir: str) -> str:
        from cinesense.pipelines.train import track_training_run

        return track_training_run(_settings(), Path(model_dir), Path(report), Path(dataset_dir))

    @task
    def quantize(model_dir: str, dataset_dir: str) -> str:
        from cinesense.pipelines.train import quantize_sentiment

        settings = _settings(torch_threads=True)
        target = _paths(settings)["bundle"]
        quantize_sentiment(settings, Path(model_dir), Path(dataset_dir), target)
        return str(target)

    @task(**SERVER_RETRIES)
    def register(
        mlflow_run_id: str, model_dir: str, bundle_dir: str, report: str, dataset_dir: str
    ) -> dict[str, Any]:
        from cinesense.pipelines.train import register_version

        return register_version(
            _settings(torch_threads=True),
            mlflow_run_id,
            Path(model_dir),
            Path(bundle_dir),
            Path(report),
            Path(dataset_dir),
        )

    @task(**SERVER_RETRIES)
    def promote(registered: dict[str, Any], dataset_dir: str) -> dict[str, Any]:
        from dataclasses import asdict

        from cinesense.pipelines.train import gate_version

        margin = get_current_context()["params"]["promotion_margin"]
        decision = gate_version(_settings(), registered["version"], Path(dataset_dir), margin)
        return asdict(decision)

    @task
    def announce(decision: dict[str, Any], registered: dict[str, Any]) -> str:
        from cinesense.pipelines.train import training_message

        run_id = get_current_context()["run_id"]
        return notify(training_message(decision, registered, run_id))

    dataset = build_dataset()
    model = train(dataset)
    report = evaluate(model, dataset)
    mlflow_run = register_run(model, report, dataset)
    bundle = quantize(model, dataset)
    mlflow_run >> bundle  # the run is recorded even when quantization refuses the model
    registered = register(mlflow_run, model, bundle, report, dataset)
    decision = promote(registered, dataset)
    check_new_reviews() >> dataset
    announce(decision, registered)


train_model()
