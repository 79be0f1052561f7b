"""Build the self-built Korean base model (by hand, once per install or corpus change).

Builds a dataset from all review text that may train models — the corpus plus crawled
reviews (CGV's only if an operator allowed it) — and pretrains a WordPiece tokenizer and
a masked-language-model BERT on its train and validation text (never its test movies).
The result replaces ``CINESENSE_HOME/models/base``, where ``train_model`` finds it with
``base_model = self-built``. The ``small`` preset takes about 80 minutes on 2 CPU cores.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from airflow.sdk import Param, dag, get_current_context, task
from cinesense_airflow import (
    START_DATE,
    cinesense_settings,
    notify_failure,
    option_params,
    option_values,
    run_dir,
)


def _settings(torch_threads: bool = False):
    params = get_current_context()["params"]
    return cinesense_settings(torch_threads, pretrain=option_values("pretrain", params))


@dag(
    dag_id="build_base_model",
    description="Pretrain the self-built Korean BERT base model from stored review text",
    schedule=None,
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args={"on_failure_callback": notify_failure},
    tags=["cinesense", "training"],
    doc_md=__doc__,
    params={
        **option_params("pretrain"),
        "include_crawled": Param(
            True,
            type="boolean",
            title="Include crawled reviews",
            description="Add the text of crawled reviews that may train models.",
        ),
    },
)
def build_base_model() -> None:
    @task
    def build_dataset() -> str:
        from cinesense.pipelines.dataset import build_training_dataset

        settings = _settings()
        context = get_current_context()
        target = run_dir(settings, context["dag"].dag_id, context["run_id"]) / "dataset"
        build_training_dataset(
            settings, target, include_crawled=context["params"]["include_crawled"]
        )
        return str(target)

    @task(execution_timeout=timedelta(hours=8))
    def pretrain(dataset_dir: str) -> str:
        from cinesense.pipelines.train import pretrain_base

        settings = _settings(torch_threads=True)
        result = pretrain_base(
            settings, Path(dataset_dir), settings.self_built_base_dir, progress=False
        )
        return result["directory"]

    pretrain(build_dataset())


build_base_model()
