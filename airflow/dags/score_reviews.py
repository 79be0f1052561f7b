"""Score newly stored reviews with the champion, after every crawl that stored some.

Scheduled on the ``cinesense_reviews`` asset. Scores the reviews stored since the last
batch with the model behind the registry's ``champion`` alias (ONNX Runtime, as the
service serves it) and writes per-review predictions and per-movie aggregates — share
positive, mean predicted rating, mean real rating where the source has ratings — to
object storage under ``scores/`` for the UI and for drift checks. With nothing new, or
no champion yet, the run is skipped (the reviews wait for the next one).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from airflow.sdk import dag, get_current_context, task
from cinesense_airflow import RETRY, REVIEWS, SCORES, START_DATE, cinesense_settings


@dag(
    dag_id="score_reviews",
    description="Score newly stored reviews with the champion; per-movie aggregates",
    schedule=REVIEWS,
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    tags=["cinesense", "scoring"],
    doc_md=__doc__,
)
def score_reviews() -> None:
    @task(retries=2, **RETRY, execution_timeout=timedelta(hours=2))
    def score() -> dict[str, Any]:
        from airflow.sdk.exceptions import AirflowSkipException

        from cinesense.pipelines.score import score_new_reviews

        result = score_new_reviews(cinesense_settings(), get_current_context()["run_id"])
        if not result["scored"]:
            raise AirflowSkipException(result["skipped"])
        return result

    @task(outlets=[SCORES])
    def aggregate(scored: dict[str, Any]) -> str:
        from cinesense.pipelines.score import write_movie_aggregates

        return write_movie_aggregates(cinesense_settings())["aggregates"]

    aggregate(score())


score_reviews()
