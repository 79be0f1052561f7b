"""Job endpoints: ask Airflow (REST API v2) to crawl a movie now or to retrain, and read
the run's state. The UI calls these; only the service holds Airflow's credentials.

Retraining is an admin action (``X-API-Key`` = ``CINESENSE_SERVE__ADMIN_API_KEY``); a
crawl of one movie is open to every UI user (nginx rate-limits ``/api/``).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Path
from pydantic import BaseModel, ConfigDict, Field, create_model
from starlette.exceptions import HTTPException

from cinesense.airflow_api import RUN_STATES_DONE, AirflowClient, AirflowError
from cinesense.config import Settings
from cinesense.options import request_fields
from cinesense.serving.routers.deps import check_admin
from cinesense.serving.routers.read import MOVIE_ID, SettingsDep

router = APIRouter()
JOBS = Literal["crawl", "train"]


class CrawlJob(BaseModel):
    model_config = ConfigDict(extra="forbid")
    source: Literal["megabox", "cgv"]
    movie_id: str = Field(pattern=MOVIE_ID)
    title: str = Field("", max_length=200)
    max_reviews: int | None = Field(500, ge=1, le=100_000)


TrainOptions = create_model(
    "TrainOptions", __config__=ConfigDict(extra="forbid"), **request_fields("train")
)


class TrainJob(TrainOptions):
    """The ``train_model`` DAG's Params; unset fields keep the DAG's defaults. The training
    options and their bounds come from the settings (:mod:`cinesense.options`)."""

    include_crawled: bool | None = None
    promotion_margin: float | None = Field(None, ge=0, le=0.5)


class JobRun(BaseModel):
    job: str
    dag_id: str
    run_id: str
    state: str | None = Field(description="Airflow's state: queued, running, success, failed.")
    done: bool
    airflow_path: str = Field(description="The run in the Airflow UI, relative to its root.")


@router.post("/v1/jobs/crawl", tags=["jobs"], status_code=202)
def crawl(job: CrawlJob, settings: SettingsDep) -> JobRun:
    """Ask Airflow to run ``crawl_reviews`` for one movie now."""
    conf: dict[str, Any] = {
        "sources": [job.source],
        "movies": [{"source": job.source, "movie_id": job.movie_id, "title": job.title}],
        "max_reviews": job.max_reviews,
    }
    dag_id = settings.airflow.crawl_dag_id
    return _answer("crawl", dag_id, _airflow(settings, lambda c: c.trigger(dag_id, conf)))


@router.post(
    "/v1/jobs/train",
    tags=["jobs"],
    status_code=202,
    responses={401: {"description": "Missing or wrong X-API-Key."}},
)
def train(
    job: TrainJob, settings: SettingsDep, x_api_key: Annotated[str | None, Header()] = None
) -> JobRun:
    """Admin: ask Airflow to run ``train_model`` with these Params."""
    check_admin(settings, x_api_key)
    conf = job.model_dump(exclude_none=True)
    dag_id = settings.airflow.train_dag_id
    return _answer("train", dag_id, _airflow(settings, lambda c: c.trigger(dag_id, conf)))


@router.get("/v1/jobs/{job}/{run_id}", tags=["jobs"])
def job_state(
    settings: SettingsDep,
    job: JOBS,
    run_id: Annotated[str, Path(pattern=r"^[A-Za-z0-9_.:+-]{1,250}$")],
) -> JobRun:
    """The state of a run started by the endpoints above."""
    dag_id = settings.airflow.crawl_dag_id if job == "crawl" else settings.airflow.train_dag_id
    return _answer(job, dag_id, _airflow(settings, lambda c: c.run(dag_id, run_id)))


def _airflow(settings: Settings, call: Any) -> dict[str, Any]:
    try:
        with AirflowClient(settings.airflow) as client:
            answer: dict[str, Any] = call(client)
            return answer
    except AirflowError as error:
        raise HTTPException(error.status, str(error)) from error


def _answer(job: str, dag_id: str, run: dict[str, Any]) -> JobRun:
    run_id = str(run.get("dag_run_id", ""))
    state = run.get("state")
    return JobRun(
        job=job,
        dag_id=dag_id,
        run_id=run_id,
        state=state,
        done=state in RUN_STATES_DONE,
        airflow_path=f"dags/{dag_id}/runs/{run_id}",
    )
