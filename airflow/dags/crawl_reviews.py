"""Daily crawl of movie reviews into the review store.

Lists the movies now showing at each chosen source, then crawls each (source, movie) in
its own mapped task — retried with exponential backoff, one at a time so the per-host
rate limit holds across tasks. A movie that fails does not stop the others; a source that
blocks us or rate-limits us is not asked again in the same run. The summary counts new,
duplicate and failed per source and fails the run only when every attempt failed. When
new reviews were stored, the ``cinesense_reviews`` asset is updated, which starts
``score_reviews`` (and counts towards retraining in ``train_model``).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from airflow.sdk import CronTriggerTimetable, Param, TriggerRule, dag, get_current_context, task
from cinesense_airflow import RETRY, REVIEWS, START_DATE, TIMEZONE, cinesense_settings

SOURCES = ["megabox", "cgv"]
# Errors that retrying cannot fix, or that retrying would be rude about.
NOT_RETRIED = {"blocked", "breaker_open", "rate_limited", "robots", "input", "stopped"}


@dag(
    dag_id="crawl_reviews",
    description="Crawl reviews of the movies now showing at Megabox and CGV",
    schedule=CronTriggerTimetable("0 4 * * *", timezone=TIMEZONE),
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=timedelta(hours=12),
    tags=["cinesense", "crawl"],
    doc_md=__doc__,
    params={
        "sources": Param(
            SOURCES,
            type="array",
            items={"type": "string", "enum": SOURCES},
            minItems=1,
            uniqueItems=True,
            title="Sources",
            description="Which sites to crawl (CGV needs Chromium on the workers).",
        ),
        "max_movies": Param(
            20,
            type=["null", "integer"],
            minimum=1,
            title="Movies per source",
            description="Crawl at most this many movies now showing per source (by rank); "
            "empty: all of them.",
        ),
        "movies": Param(
            [],
            type="array",
            items={
                "type": "object",
                "properties": {
                    "source": {"type": "string", "enum": SOURCES},
                    "movie_id": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,40}$"},
                    "title": {"type": "string"},
                },
                "required": ["source", "movie_id"],
            },
            title="Only these movies",
            description="Crawl exactly these movies ({source, movie_id, title}) instead of "
            "the movies now showing; the UI's '최신 리뷰 가져오기' sends one.",
        ),
        "max_reviews": Param(
            500,
            type=["null", "integer"],
            minimum=1,
            title="Reviews per movie",
            description="Store at most this many new reviews per movie in one run; the next "
            "run continues where this one stopped. Empty: no limit.",
        ),
    },
)
def crawl_reviews() -> None:
    @task
    def list_movies() -> list[dict[str, str]]:
        from cinesense.pipelines.crawl import list_crawl_targets

        context = get_current_context()
        params = context["params"]
        listed = list_crawl_targets(
            cinesense_settings(), params["sources"], params["max_movies"], params["movies"]
        )
        context["ti"].xcom_push(key="listing_failures", value=listed["failures"])
        return listed["movies"]

    @task(
        retries=3,
        **RETRY,
        max_active_tis_per_dag=1,
        execution_timeout=timedelta(hours=2),
        map_index_template="{{ crawl_target }}",
    )
    def crawl_movie(source: str, movie_id: str, title: str) -> dict[str, Any]:
        from airflow.sdk.exceptions import AirflowFailException

        from cinesense.errors import CrawlerError
        from cinesense.pipelines.crawl import crawl_target

        context = get_current_context()
        params, run_id = context["params"], context["run_id"]
        context["crawl_target"] = f"{source} {movie_id} {title}"  # names the mapped task
        try:
            return crawl_target(
                cinesense_settings(),
                source,
                movie_id,
                title,
                max_reviews=params["max_reviews"],
                stop_scope=run_id,
            )
        except CrawlerError as error:
            if error.kind in NOT_RETRIED:
                raise AirflowFailException(str(error)) from error
            raise

    @task(trigger_rule=TriggerRule.ALL_DONE)
    def summarize(targets: list[dict[str, Any]], results: list[dict[str, Any]]) -> dict[str, Any]:
        from cinesense.pipelines.crawl import summarize_crawl

        failures = get_current_context()["ti"].xcom_pull(
            task_ids="list_movies", key="listing_failures"
        )
        return summarize_crawl(list(targets), list(results), failures or {})

    @task(outlets=[REVIEWS])
    def publish(summary: dict[str, Any], outlet_events: Any = None) -> dict[str, int]:
        from airflow.sdk.exceptions import AirflowSkipException

        if not summary["new"]:
            raise AirflowSkipException("no new reviews stored: the review asset stays as it was")
        new = {source: info["new"] for source, info in summary["sources"].items()}
        outlet_events[REVIEWS].extra = {"new": summary["new"], "new_by_source": new}
        return new

    movies = list_movies()
    publish(summarize(movies, crawl_movie.expand_kwargs(movies)))


crawl_reviews()
