"""The read endpoints (movies, one movie, models) and the job endpoints, in-process over a
review store crawled from the fake site and scored by the tiny bundle; Airflow is a real
closed port or a real non-Airflow server, never a stand-in. Also: crawled movies keep
their titles (stored records and manifests), for both sources."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from cinesense.config import AirflowApiSettings, MlflowSettings, ServeSettings, Settings
from cinesense.crawl.fakesite import FakeSite
from cinesense.crawl.jobs import crawl_movie, list_movies, read_reviews
from cinesense.model.heads import LabelMap
from cinesense.model.quantify import estimated_share
from cinesense.serving.app import create_app
from tests.crawl_support import crawl_settings
from tests.servers import free_port
from tests.ui_stack import SCORED, UNSCORED, populate, with_routers

ADMIN = "read-api-admin"


def app_settings(home: Path, site_url: str, bundle: Path | None, **airflow: object) -> Settings:
    settings = crawl_settings(home, site_url)
    return settings.model_copy(
        update={
            "serve": ServeSettings(bundle_dir=bundle, admin_api_key=ADMIN, onnx_threads=1),
            "airflow": AirflowApiSettings(**airflow),  # type: ignore[arg-type]
        }
    )


@pytest.fixture(scope="module")
def site() -> Iterator[FakeSite]:
    with FakeSite() as fake:
        yield fake


@pytest.fixture(scope="module")
def client(
    tmp_path_factory: pytest.TempPathFactory, site: FakeSite, tiny_bundle: Path
) -> Iterator[TestClient]:
    home = tmp_path_factory.mktemp("read-api")
    settings = app_settings(
        home, site.url, tiny_bundle, base_url=f"http://127.0.0.1:{free_port()}", username="u"
    )
    populate(settings, site.url, tiny_bundle)
    with TestClient(with_routers(create_app(settings), settings)) as test_client:
        yield test_client


def test_movies_lists_titles_counts_and_scores(client: TestClient, tiny_bundle: Path) -> None:
    response = client.get("/v1/movies")
    assert response.status_code == 200, response.text
    movies = {m["movie_id"]: m for m in response.json()["movies"]}
    assert set(movies) == {*SCORED, UNSCORED}
    scored = movies["26000100"]
    assert scored["title"] == "푸른 항구의 여름"
    assert scored["reviews"] == scored["scored_reviews"] > 0
    assert 0 <= scored["share_positive"] <= 1 and 1 <= scored["mean_predicted_rating"] <= 10
    recall = LabelMap.load(tiny_bundle).validation_recall
    expected = estimated_share(scored["share_positive"], recall)
    assert expected is not None, "the tiny model keeps its validation recall"
    assert scored["estimated_share_positive"] == pytest.approx(expected)
    assert scored["mean_real_rating"] is not None and scored["last_crawled_at"]
    assert movies["26000200"]["title"] == "마지막 기차 & 별빛"  # HTML entity decoded
    waiting = movies[UNSCORED]
    assert waiting["scored_reviews"] == 0 and waiting["share_positive"] is None
    assert client.get("/v1/movies", params={"source": "cgv"}).json() == {"movies": []}
    assert client.get("/v1/movies", params={"source": "naver"}).status_code == 422


def test_one_movie_has_aggregates_charts_keywords_and_a_page(client: TestClient) -> None:
    body = client.get("/v1/movies/megabox/26000100", params={"page_size": 5}).json()
    movie, total = body["movie"], body["total"]
    assert movie["title"] == "푸른 항구의 여름" and total == movie["reviews"]
    assert (
        sum(sum(day[k] for k in ("positive", "negative", "uncertain")) for day in body["timeline"])
        == total
    )
    assert sum(body["predicted_rating_histogram"].values()) == total
    assert sum(body["real_rating_histogram"].values()) == total  # Megabox rates every review
    assert body["keywords"]["positive"] and body["keyword_method"] in ("okt", "whitespace")
    assert len(body["reviews"]) == 5 and body["page"] == 1
    dates = [r["created_at"] for r in body["reviews"]]
    assert dates == sorted(dates, reverse=True)
    best, worst = body["most_positive"][0], body["most_negative"][0]
    assert best["probability_positive"] >= worst["probability_positive"]
    every = client.get("/v1/movies/megabox/26000100", params={"page_size": 200}).json()["reviews"]
    assert max(r["probability_positive"] for r in every) == best["probability_positive"]
    second = client.get("/v1/movies/megabox/26000100", params={"page": 2, "page_size": 5}).json()
    assert {r["review_id"] for r in second["reviews"]}.isdisjoint(
        {r["review_id"] for r in body["reviews"]}
    )
    ordered = client.get("/v1/movies/megabox/26000100", params={"order": "negative"}).json()
    probabilities = [r["probability_positive"] for r in ordered["reviews"]]
    assert probabilities == sorted(probabilities)


def test_an_unscored_movie_has_reviews_without_labels(client: TestClient) -> None:
    body = client.get(f"/v1/movies/megabox/{UNSCORED}").json()
    assert body["movie"]["scored_reviews"] == 0 and body["total"] > 0
    assert all(r["label"] is None and r["text"] for r in body["reviews"])
    assert body["timeline"] == [] and body["most_positive"] == []


def test_unknown_movies_and_bad_ids(client: TestClient) -> None:
    missing = client.get("/v1/movies/megabox/99999999")
    assert missing.status_code == 404 and "crawl it first" in missing.json()["error"]
    assert client.get("/v1/movies/megabox/bad id!").status_code in (404, 422)
    assert client.get("/v1/movies/naver/1").status_code == 422
    assert client.get("/v1/movies/megabox/26000100", params={"page_size": 0}).status_code == 422


def test_now_showing_search_reads_the_lists_the_crawl_saved(client: TestClient) -> None:
    from cinesense.pipelines.crawl import list_crawl_targets

    assert client.get("/v1/now-showing").json() == {"movies": [], "fetched_at": {}}
    settings = client.app.state.settings  # type: ignore[attr-defined]
    targets = list_crawl_targets(settings, ["megabox"], max_movies=1)
    assert len(targets["movies"]) == 1  # the crawl takes one; the whole list is kept

    listed = client.get("/v1/now-showing").json()
    assert set(listed["fetched_at"]) == {"megabox"} and len(listed["movies"]) > 1
    crawled = {m["movie_id"]: m["crawled_reviews"] for m in listed["movies"]}
    assert crawled["26000100"] > 0 and 0 in crawled.values()
    found = client.get("/v1/now-showing", params={"q": "푸른 항구"}).json()["movies"]
    assert [m["title"] for m in found] == ["푸른 항구의 여름"]
    assert client.get("/v1/now-showing", params={"source": "cgv"}).json()["movies"] == []
    assert client.get("/v1/now-showing", params={"q": "x" * 101}).status_code == 422


def test_models_for_a_bundle(client: TestClient) -> None:
    body = client.get("/v1/models").json()
    assert body["registry"] is False and body["champion"] == "local"
    (version,) = body["versions"]
    assert version["quantization"] in ("int8", "fp32") and 0 < version["test_accuracy"] <= 1


def test_openapi_documents_the_new_endpoints(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    for path in ("/v1/movies", "/v1/movies/{source}/{movie_id}", "/v1/models", "/v1/now-showing"):
        assert "get" in paths[path]
    assert "post" in paths["/v1/jobs/crawl"] and "post" in paths["/v1/jobs/train"]
    assert "get" in paths["/v1/jobs/{job}/{run_id}"]


# --- jobs ----------------------------------------------------------------------------


def test_crawl_job_with_airflow_down_is_a_clear_502(client: TestClient) -> None:
    response = client.post("/v1/jobs/crawl", json={"source": "megabox", "movie_id": "26000100"})
    assert response.status_code == 502
    assert "cannot be reached" in response.json()["error"]
    state = client.get("/v1/jobs/crawl/manual__2026-01-01")
    assert state.status_code == 502


def test_train_job_is_admin_only(client: TestClient) -> None:
    assert client.post("/v1/jobs/train", json={}).status_code == 401
    wrong = client.post("/v1/jobs/train", json={}, headers={"X-API-Key": "nope"})
    assert wrong.status_code == 401 and "X-API-Key" in wrong.json()["error"]
    allowed = client.post("/v1/jobs/train", json={"epochs": 1}, headers={"X-API-Key": ADMIN})
    assert allowed.status_code == 502  # past the key check: Airflow is down
    bad = client.post("/v1/jobs/train", json={"epochs": -1}, headers={"X-API-Key": ADMIN})
    assert bad.status_code == 422
    unknown = client.post("/v1/jobs/train", json={"gpus": 8}, headers={"X-API-Key": ADMIN})
    assert unknown.status_code == 422
    assert client.get("/v1/jobs/deploy/x").status_code == 422


def test_jobs_without_airflow_settings_or_admin_key(
    tmp_path: Path, site: FakeSite, tiny_bundle: Path
) -> None:
    settings = app_settings(tmp_path, site.url, tiny_bundle)
    settings = settings.model_copy(update={"serve": ServeSettings(bundle_dir=tiny_bundle)})
    with TestClient(with_routers(create_app(settings), settings)) as bare:
        crawl = bare.post("/v1/jobs/crawl", json={"source": "cgv", "movie_id": "30000100"})
        assert crawl.status_code == 503 and "CINESENSE_AIRFLOW__BASE_URL" in crawl.json()["error"]
        train = bare.post("/v1/jobs/train", json={}, headers={"X-API-Key": "x"})
        assert train.status_code == 403 and "disabled" in train.json()["error"]


def test_a_server_that_is_not_airflow_is_named(
    tmp_path: Path, site: FakeSite, tiny_bundle: Path
) -> None:
    settings = app_settings(tmp_path, site.url, tiny_bundle, base_url=site.url, username="u")
    with TestClient(with_routers(create_app(settings), settings)) as test_client:
        response = test_client.post("/v1/jobs/crawl", json={"source": "megabox", "movie_id": "1"})
    assert response.status_code == 502 and "Airflow 3 api-server" in response.json()["error"]


def test_models_from_the_registry_show_gate_decisions_and_history(
    tmp_path: Path, site: FakeSite, tiny_bundle: Path, sample_dataset: object
) -> None:
    import mlflow

    from cinesense.gate import promote
    from cinesense.registry import connect, experiment_id, register_bundle

    settings = app_settings(tmp_path, site.url, None).model_copy(
        update={"mlflow": MlflowSettings(model_name="ui-models")}
    )
    connect(settings)
    with mlflow.start_run(experiment_id=experiment_id(settings)) as run:
        pass
    tags = {"test_accuracy": "0.81", "baseline_accuracy": "0.74", "served_format": "int8"}
    version = register_bundle(settings, run.info.run_id, tiny_bundle, tags)
    promote(settings, version, sample_dataset["test"], 0.5)  # type: ignore[index]
    with TestClient(with_routers(create_app(settings), settings)) as test_client:
        body = test_client.get("/v1/models").json()
    assert body["registry"] is True and body["champion"] == version
    (entry,) = body["versions"]
    assert entry["aliases"] == ["challenger", "champion"] and entry["test_accuracy"] == 0.81
    assert entry["baseline_accuracy"] == 0.74 and entry["quantization"] == "int8"
    assert entry["gate"]["decision"] == "promoted" and entry["gate"]["reason"]
    assert body["history"][0]["version"] == version and body["history"][0]["kind"] == "promotion"


# --- titles of crawled movies ----------------------------------------------------------


def test_a_movie_crawled_by_id_alone_stores_its_title(tmp_path: Path, site: FakeSite) -> None:
    settings = crawl_settings(tmp_path, site.url)
    result = crawl_movie(settings, "megabox", "26000100", max_reviews=5)
    assert result.title == "푸른 항구의 여름"
    assert set(read_reviews(settings, "megabox", "26000100")["movie_title"]) == {result.title}
    assert list(list_movies(settings)["title"]) == [result.title]


@pytest.mark.browser
def test_cgv_reviews_carry_the_title_though_its_api_does_not_name_the_movie(
    tmp_path: Path, site: FakeSite
) -> None:
    settings = crawl_settings(tmp_path, site.url)
    result = crawl_movie(settings, "cgv", "30000100", max_reviews=6)
    assert result.title == "하늘을 나는 고양이"
    assert set(read_reviews(settings, "cgv", "30000100")["movie_title"]) == {result.title}
    assert list(list_movies(settings, "cgv")["title"]) == [result.title]
