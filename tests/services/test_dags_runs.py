"""Real DAG runs (``dag.test()``, SQLite metadata) against real servers on loopback.

The review store and the scores live in an S3-compatible server (moto's server mode),
reached with credentials from an Airflow connection; MLflow is a real server proxying its
artifacts to the same S3 server; the crawl reads the local fake site; Slack is a local
webhook that records what it is sent. In order: a daily crawl in which one movie keeps
failing (the others are stored and the run succeeds), an empty crawl and a crawl where
everything fails; the base model and a training run whose challenger loses to the TF-IDF
baseline (registered, not promoted, and the notification says why); a training run that
fails (the failure is announced); scoring before and after there is a champion.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from cinesense.config import MlflowSettings, Settings, StorageSettings
from cinesense.crawl import fakesite
from cinesense.crawl.fakesite import FakeMovie, FakeSite
from cinesense.crawl.jobs import read_reviews
from cinesense.pipelines.score import read_manifest, read_movie_aggregates, read_predictions
from cinesense.pipelines.train import new_labelled_reviews
from cinesense.registry import CHALLENGER, CHAMPION, connect, list_versions
from cinesense.storage import open_store
from tests.dag_support import airflow_environment, require_airflow, run_dag, task_states
from tests.servers import create_bucket, mlflow_server, moto_server

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

STORE_BUCKET = "cinesense-store"
MLFLOW_BUCKET = "mlflow"
STORE_KEY = "airflow-store-key"
STORE_SECRET = "s3cr3t-from-the-airflow-connection"
SLACK_TOKEN = "XOXB-webhook-token-never-logged"
BROKEN_MOVIE = "26000200"  # its review pages change shape: the crawler refuses them
GOOD_MOVIE, GOOD_REVIEWS = "26000100", 34  # 37 on the site, 3 hidden by moderation


@dataclass
class Slack:
    url: str
    messages: list[str] = field(default_factory=list)


@dataclass
class Platform:
    env: dict[str, str]
    settings: Settings
    site: FakeSite
    slack: Slack
    s3: str


@pytest.fixture(scope="module")
def slack() -> Iterator[Slack]:
    received: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            received.append(json.loads(body)["text"])
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    try:
        yield Slack(f"http://127.0.0.1:{port}/services/T000/B000/{SLACK_TOKEN}", received)
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory, slack: Slack) -> Iterator[Platform]:
    require_airflow()
    root = tmp_path_factory.mktemp("platform")
    with (
        FakeSite() as site,
        moto_server() as s3,
        mlflow_server(root, s3, MLFLOW_BUCKET) as mlflow_url,
    ):
        create_bucket(s3, MLFLOW_BUCKET)
        home = root / "home"
        storage = {"endpoint_url": s3, "bucket": STORE_BUCKET}
        connections = {
            "AIRFLOW_CONN_CINESENSE_STORAGE": json.dumps(
                {
                    "conn_type": "generic",
                    "login": STORE_KEY,
                    "password": STORE_SECRET,
                    "extra": storage,
                }
            ),
            "AIRFLOW_CONN_CINESENSE_SLACK": json.dumps(
                {"conn_type": "generic", "password": slack.url}
            ),
        }
        env = airflow_environment(
            root / "airflow",
            **connections,
            CINESENSE_HOME=str(home),
            CINESENSE_ENVIRONMENT="test",
            CINESENSE_NUM_THREADS="2",
            CINESENSE_HF_OFFLINE="true",
            CINESENSE_MLFLOW__TRACKING_URI=mlflow_url,
            CINESENSE_MLFLOW__MAX_RETRIES="1",
            CINESENSE_CRAWL__MEGABOX__BASE_URL=site.url,
            CINESENSE_CRAWL__CGV__BASE_URL=site.url,
            CINESENSE_CRAWL__RATE_LIMIT_PER_S="500",
            CINESENSE_CRAWL__MAX_RETRIES="1",
            CINESENSE_CRAWL__BACKOFF_BASE_S="0.01",
            CINESENSE_CRAWL__BACKOFF_MAX_S="0.05",
            CINESENSE_CRAWL__CONNECT_TIMEOUT_S="2",
            CINESENSE_CRAWL__READ_TIMEOUT_S="2",
        )
        settings = Settings(
            home=home,
            environment="test",
            storage=StorageSettings(
                backend="s3",
                access_key_id=STORE_KEY,  # type: ignore[arg-type]
                secret_access_key=STORE_SECRET,  # type: ignore[arg-type]
                **storage,  # type: ignore[arg-type]
            ),
            mlflow=MlflowSettings(tracking_uri=mlflow_url, max_retries=1),
        )
        yield Platform(env, settings, site, slack, s3)


def no_secrets(output: str) -> None:
    assert STORE_SECRET not in output
    assert SLACK_TOKEN not in output


@pytest.fixture
def broken_movie(monkeypatch: pytest.MonkeyPatch) -> None:
    """One movie's review API answers with renamed fields, every time it is asked."""
    original = fakesite.megabox_reviews

    def reviews(fake: FakeSite, body: dict[str, str]) -> dict[str, Any]:
        data = original(fake, body)
        if body.get("movieNo") == BROKEN_MOVIE:
            for item in data["list"]:
                item["evalNo"] = item.pop("onelnEvalNo")
        return data

    monkeypatch.setattr(fakesite, "megabox_reviews", reviews)


def test_a_daily_crawl_stores_reviews_although_one_movie_keeps_failing(
    platform: Platform, broken_movie: None
) -> None:
    result, output = run_dag(platform.env, "crawl_reviews", {"sources": ["megabox"]})
    assert result["state"] == "success"
    mapped = {t["rendered_map_index"].split()[1]: t for t in result["tasks"] if t["map_index"] >= 0}
    assert mapped[GOOD_MOVIE]["state"] == "success"
    assert mapped[BROKEN_MOVIE]["state"] == "failed"
    assert mapped[BROKEN_MOVIE]["try_number"] == 4  # three retries, with backoff
    summary = result["xcoms"]["summarize"]["sources"]["megabox"]
    assert summary["new"] == GOOD_REVIEWS and summary["failed"] == 1
    assert summary["failed_movies"] == [BROKEN_MOVIE] and summary["movies"] == 2
    assert result["asset_events"] == [
        {
            "asset": "cinesense_reviews",
            "extra": {"new": GOOD_REVIEWS, "new_by_source": {"megabox": GOOD_REVIEWS}},
            "task": "publish",
        }
    ]
    stored = read_reviews(platform.settings)
    assert set(stored["movie_id"]) == {GOOD_MOVIE} and len(stored) == GOOD_REVIEWS
    assert open_store(platform.settings).uri("x").startswith(f"s3://{STORE_BUCKET}/")
    no_secrets(output)


def test_an_empty_crawl_succeeds_quietly_and_a_crawl_where_everything_fails_fails(
    platform: Platform,
) -> None:
    with FakeSite(movies=[FakeMovie("megabox", "26009900", "끝난 영화", 5, showing=False)]) as idle:
        env = {**platform.env, "CINESENSE_CRAWL__MEGABOX__BASE_URL": idle.url}
        result, _ = run_dag(env, "crawl_reviews", {"sources": ["megabox"]})
    assert result["state"] == "success"
    states = task_states(result)
    assert states["crawl_movie"] == "skipped" and states["summarize"] == "success"
    assert states["publish"] == "skipped"  # nothing new: nobody downstream is woken
    assert result["xcoms"]["summarize"]["new"] == 0 and result["asset_events"] == []

    platform.site.faults.block = True
    try:
        result, output = run_dag(platform.env, "crawl_reviews", {"sources": ["megabox"]})
    finally:
        platform.site.faults.block = False
    assert result["state"] == "failed"
    assert task_states(result)["summarize"] == "failed"
    assert "every crawl failed" in output and result["asset_events"] == []


def test_training_registers_a_challenger_that_the_gate_rejects_and_says_why(
    platform: Platform,
) -> None:
    base, _ = run_dag(platform.env, "build_base_model", {"preset": "tiny", "epochs": 1})
    assert base["state"] == "success"
    assert (Path(platform.env["CINESENSE_HOME"]) / "models/base/config.json").exists()

    sent_before = len(platform.slack.messages)
    result, output = run_dag(
        platform.env,
        "train_model",
        {"epochs": 1, "max_train_samples": 1500, "promotion_margin": 0.01},
    )
    assert result["state"] == "success", task_states(result)
    registered, decision = result["xcoms"]["register"], result["xcoms"]["promote"]
    assert registered["version"] == "1" and decision["promoted"] is False
    assert "does not beat the TF-IDF baseline" in decision["reason"]
    assert result["xcoms"]["announce"] == "slack"

    versions = {row["version"]: row for row in list_versions(platform.settings)}
    assert versions["1"]["aliases"] == [CHALLENGER]
    assert versions["1"]["tags"]["gate.decision"] == "rejected"
    client = connect(platform.settings)
    run = client.get_run(registered["run_id"])
    assert run.data.params["train.epochs"] == "1.0"  # the run's Params reached the settings
    assert "onnx_accuracy_int8" in run.data.metrics and "test_accuracy" in run.data.metrics

    (message,) = platform.slack.messages[sent_before:]
    assert "version 1 was not promoted" in message and decision["reason"] in message
    # The crawled reviews it trained on no longer count towards the next retraining.
    waiting = new_labelled_reviews(platform.settings)
    assert waiting["new_labelled"] == 0 and waiting["since"] is not None
    no_secrets(output)


def test_a_training_run_that_fails_is_announced(platform: Platform) -> None:
    sent_before = len(platform.slack.messages)
    result, output = run_dag(platform.env, "train_model", {"base_model": "/no/such/model"})
    assert result["state"] == "failed"
    assert task_states(result)["train"] == "failed"
    (message,) = platform.slack.messages[sent_before:]
    assert "train_model" in message and "failed at task train" in message
    no_secrets(output)


def test_scoring_waits_for_a_champion_then_scores_the_new_reviews(platform: Platform) -> None:
    result, _ = run_dag(platform.env, "score_reviews")
    assert result["state"] == "success"
    assert task_states(result) == {"score": "skipped", "aggregate": "skipped"}
    assert result["asset_events"] == []

    # An operator makes version 1 the champion (it never beat the baseline on its own).
    client = connect(platform.settings)
    client.set_registered_model_alias(platform.settings.mlflow.model_name, CHAMPION, "1")

    result, output = run_dag(platform.env, "score_reviews")
    assert result["state"] == "success", task_states(result)
    scored = result["xcoms"]["score"]
    assert scored["scored"] == GOOD_REVIEWS and scored["model_version"] == "1"
    assert scored["predictions"].startswith(f"s3://{STORE_BUCKET}/scores/predictions/")
    assert [e["asset"] for e in result["asset_events"]] == ["cinesense_scores"]

    predictions = read_predictions(platform.settings)
    assert len(predictions) == GOOD_REVIEWS
    assert set(predictions["predicted_label"]) <= {"positive", "negative"}
    assert predictions["predicted_rating"].between(1, 10).all()
    movies = read_movie_aggregates(platform.settings).set_index("movie_id")
    movie = movies.loc[GOOD_MOVIE]
    assert movie["reviews"] == GOOD_REVIEWS and 0 <= movie["share_positive"] <= 1
    stored = read_reviews(platform.settings)
    assert movie["mean_real_rating"] == pytest.approx(stored["rating"].astype(float).mean())
    assert read_manifest(open_store(platform.settings)).batches[-1].reviews == GOOD_REVIEWS

    again, _ = run_dag(platform.env, "score_reviews")  # nothing new since: skipped
    assert task_states(again)["score"] == "skipped"
    no_secrets(output)
