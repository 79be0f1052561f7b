"""The inference service in-process: every endpoint, every bad input, the model lifecycle.

The model is the tiny bundle (real ONNX Runtime); the registry cases use the embedded
MLflow store (SQLite in a temporary home), the same code path as a server.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from cinesense.config import MlflowSettings, ServeSettings, Settings
from cinesense.model.onnx_predict import OnnxPredictor
from cinesense.model.quantify import estimated_share_of
from cinesense.serving.app import create_app
from cinesense.serving.batching import MicroBatcher
from cinesense.serving.logs import JsonFormatter
from cinesense.serving.models import DirectorySource, LoadedModel, ModelManager

REVIEWS = ["정말 재밌어요 최고의 영화", "시간 아깝다 최악", "배우 연기가 좋았다"]


def serve_settings(home: Path, **serve: object) -> Settings:
    defaults: dict[str, object] = dict(
        admin_api_key="letmein", max_texts=8, max_text_chars=300, max_analyze_texts=50
    )
    return Settings(home=home, serve=ServeSettings(**{**defaults, **serve}))


@pytest.fixture
def client(tmp_path: Path, tiny_bundle: Path) -> Iterator[TestClient]:
    with TestClient(create_app(serve_settings(tmp_path, bundle_dir=tiny_bundle))) as test_client:
        yield test_client


def test_predict_answers_each_text_in_order(client: TestClient, tiny_bundle: Path) -> None:
    response = client.post("/v1/predict", json={"texts": REVIEWS})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model_version"] == "local" and body["quantization"] in ("int8", "fp32")
    expected = OnnxPredictor.from_bundle(tiny_bundle).predict(REVIEWS)
    for item, reference in zip(body["predictions"], expected, strict=True):
        assert item["probability_positive"] == pytest.approx(reference.probability_positive)
        assert 1 <= item["rating"] <= 10 and item["truncated"] is False
        assert item["label"] in ("positive", "negative", "uncertain")
    assert response.headers["X-Request-ID"]


def test_request_id_is_echoed_when_sane(client: TestClient) -> None:
    given = client.post("/v1/predict", json={"texts": ["좋다"]}, headers={"X-Request-ID": "abc-1"})
    assert given.headers["X-Request-ID"] == "abc-1"
    odd = client.post("/v1/predict", json={"texts": ["좋다"]}, headers={"X-Request-ID": "a b\n"})
    assert odd.headers["X-Request-ID"] != "a b\n"


def test_low_confidence_is_uncertain_and_long_text_is_truncated(
    tmp_path: Path, tiny_bundle: Path
) -> None:
    app = create_app(serve_settings(tmp_path, bundle_dir=tiny_bundle, uncertain_below=1.0))
    with TestClient(app) as test_client:
        long_text = "재 " * 140  # 280 characters: within the limit, beyond 128 tokens
        body = test_client.post("/v1/predict", json={"texts": ["좋다", long_text]}).json()
    assert [p["label"] for p in body["predictions"]] == ["uncertain", "uncertain"]
    assert [p["truncated"] for p in body["predictions"]] == [False, True]


BAD_BODIES = [
    ({"texts": []}, 422, "must not be empty"),
    ({"texts": ["좋다"] * 9}, 422, "over the limit of 8"),
    ({"texts": ["가" * 301]}, 422, "301 characters is over the limit of 300"),
    ({"texts": ["   "]}, 422, "empty or only whitespace"),
    ({"texts": [""]}, 422, "is empty"),
    ({"texts": ["좋다", 3]}, 422, "texts[1]: must be a string, not int"),
    ({"texts": [None]}, 422, "must be a string"),
    ({"texts": "좋다"}, 422, "texts: must be a list"),
    ({}, 422, "texts: is required"),
    ([1, 2], 422, "must be a JSON object"),
    ({"texts": ["좋다"], "extra": 1}, 422, "extra: unknown field"),
]


def test_a_predict_body_sent_to_analyze_is_shown_the_analyze_shape(client: TestClient) -> None:
    response = client.post("/v1/analyze", json={"texts": ["좋다"]})
    assert response.status_code == 422
    error = response.json()["error"]
    assert "reviews: is required" in error and '{"reviews": [{"text"' in error, error
    assert '{"texts"' not in error


@pytest.mark.parametrize(("body", "status", "message"), BAD_BODIES)
def test_bad_predict_bodies_get_a_clear_4xx(
    client: TestClient, body: object, status: int, message: str
) -> None:
    response = client.post("/v1/predict", json=body)
    assert response.status_code == status
    assert message in response.json()["error"], response.json()


@pytest.mark.parametrize(
    ("content", "content_type", "status", "message"),
    [
        (b'{"texts": [', "application/json", 400, "not valid JSON"),
        (b"\xff\xfe", "application/json", 400, "not valid JSON"),
        (b"texts=a", "application/x-www-form-urlencoded", 415, "Content-Type: application/json"),
        (b'{"texts": ["a"]}', "text/plain", 415, "Content-Type: application/json"),
        (b"", "application/json", 422, "must be a JSON object"),
    ],
)
def test_malformed_bodies_and_content_types(
    client: TestClient, content: bytes, content_type: str, status: int, message: str
) -> None:
    response = client.post("/v1/predict", content=content, headers={"content-type": content_type})
    assert response.status_code == status, response.text
    assert message in response.json()["error"]


def test_analyze_aggregates_and_finds_keywords(client: TestClient, tiny_bundle: Path) -> None:
    reviews = [
        {"text": "배우들 연기가 정말 좋았어요 음악도 좋고", "rating": 10},
        {"text": "연기 좋고 음악 좋다 최고", "rating": 9},
        {"text": "스토리가 지루하고 최악 시간 아까움", "rating": 1},
        {"text": "지루하다 돈 아깝다"},
    ]
    response = client.post("/v1/analyze", json={"reviews": reviews})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["count"] == 4 and len(body["items"]) == 4
    shares = body["share_positive"] + body["share_negative"] + body["share_uncertain"]
    assert shares == pytest.approx(1.0, abs=1e-3)
    assert sum(body["rating_histogram"].values()) == 4
    assert body["mean_real_rating"] == pytest.approx(20 / 3, abs=0.01)
    assert sum(body["real_rating_histogram"].values()) == 3
    assert [item["real_rating"] for item in body["items"]] == [10, 9, 1, None]
    assert body["keyword_method"] == "okt"
    recall = OnnxPredictor.from_bundle(tiny_bundle).label_map.validation_recall
    assert recall is not None
    assert body["model_recall"] == {"negative": recall[0], "positive": recall[1]}
    probabilities = [item["probability_positive"] for item in body["items"]]
    estimate = estimated_share_of(probabilities, recall)
    assert body["estimated_share_positive"] == pytest.approx(estimate, abs=1e-4)
    labelled = {item["label"] for item in body["items"]}
    for side in ("positive", "negative"):
        assert bool(body["keywords"][side]) == (side in labelled)


def test_analyze_rejects_bad_ratings_and_texts(client: TestClient) -> None:
    bad = client.post("/v1/analyze", json={"reviews": [{"text": "좋다", "rating": 11}]})
    assert bad.status_code == 422 and "reviews[0].rating" in bad.json()["error"]
    blank = client.post("/v1/analyze", json={"reviews": [{"text": " "}]})
    assert blank.status_code == 422 and "reviews[0].text" in blank.json()["error"]
    too_many = client.post("/v1/analyze", json={"reviews": [{"text": "좋다"}] * 51})
    assert too_many.status_code == 422


def test_model_health_ready_and_metrics(client: TestClient) -> None:
    model = client.get("/v1/model").json()
    assert model["version"] == "local" and model["quantization"] in ("int8", "fp32")
    assert "accuracy_int8" in model["metrics"]
    assert client.get("/health").json() == {"status": "ok"}
    ready = client.get("/ready")
    assert ready.status_code == 200 and ready.json()["ready"] is True
    client.post("/v1/predict", json={"texts": REVIEWS})
    client.post("/v1/predict", json={"texts": []})
    metrics = client.get("/metrics").text
    assert 'cinesense_http_requests_total{method="POST",route="/v1/predict",status="200"}' in (
        metrics
    )
    assert 'route="/v1/predict",status="422"' in metrics
    assert "cinesense_batch_size_count" in metrics
    assert 'cinesense_model_info{quantization="' in metrics and 'version="local"' in metrics
    assert "cinesense_predictions_total{label=" in metrics


def test_unknown_routes_are_one_metric_label(client: TestClient) -> None:
    assert client.get("/nope/123").status_code == 404
    assert client.get("/nope/456").json()["error"] == "Not Found"
    assert 'route="unmatched",status="404"} 2.0' in client.get("/metrics").text


def test_reload_needs_the_admin_key(client: TestClient, tmp_path: Path, tiny_bundle: Path) -> None:
    assert client.post("/v1/model/reload").status_code == 401
    assert client.post("/v1/model/reload", headers={"X-API-Key": "wrong"}).status_code == 401
    answer = client.post("/v1/model/reload", headers={"X-API-Key": "letmein"})
    assert answer.status_code == 200 and answer.json()["version"] == "local"
    settings = serve_settings(tmp_path, bundle_dir=tiny_bundle, admin_api_key=None)
    with TestClient(create_app(settings)) as no_admin:
        disabled = no_admin.post("/v1/model/reload", headers={"X-API-Key": "x"})
    assert disabled.status_code == 403 and "ADMIN_API_KEY" in disabled.json()["error"]


def test_logs_carry_the_request_id_and_no_review_text(tmp_path: Path, tiny_bundle: Path) -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("cinesense.serving")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        for log_texts in (False, True):
            settings = serve_settings(tmp_path, bundle_dir=tiny_bundle, log_texts=log_texts)
            with TestClient(create_app(settings)) as test_client:
                test_client.post(
                    "/v1/predict", json={"texts": ["비밀 리뷰"]}, headers={"X-Request-ID": "r-1"}
                )
            lines = [json.loads(line) for line in stream.getvalue().splitlines()]
            request = [e for e in lines if e["message"] == "request" and e["request_id"] == "r-1"]
            assert request and request[-1]["route"] == "/v1/predict"
            assert request[-1]["status"] == 200
            assert ("비밀 리뷰" in stream.getvalue()) is log_texts
    finally:
        logger.removeHandler(handler)
        logger.setLevel(logging.NOTSET)


def test_concurrent_requests_share_micro_batches(tiny_bundle: Path) -> None:
    # FP32: INT8 activations are quantized per batch, so INT8 results move with the batch a
    # text lands in; FP32 shows whether every text got its own answer back.
    from cinesense.model.export import FP32_FILE
    from cinesense.model.onnx_predict import verify_bundle

    manifest = {**verify_bundle(tiny_bundle), "served_file": FP32_FILE}
    predictor = OnnxPredictor(tiny_bundle, manifest, threads=1)
    manager = ModelManager(DirectorySource(tiny_bundle, 1))
    manager.current = LoadedModel(predictor, "local", {})
    sizes: list[int] = []
    texts = [f"{REVIEWS[i % 3]} {i}" for i in range(12)]

    async def run() -> list:
        batcher = MicroBatcher(manager, max_size=8, max_wait_s=0.05, on_batch=sizes.append)
        batcher.start()
        try:
            return await asyncio.gather(*(batcher.predict([text]) for text in texts))
        finally:
            await batcher.close()

    results = asyncio.run(run())
    assert sizes == [8, 4]  # the first batch filled up; the rest made the second
    expected = predictor.predict(texts)
    for (served, model), reference in zip(results, expected, strict=True):
        assert model.version == "local"
        assert served[0].probability_positive == pytest.approx(
            reference.probability_positive, abs=1e-4
        )


# --- the registry lifecycle ---------------------------------------------------------------


def registered_version(settings: Settings, bundle: Path) -> str:
    import mlflow

    from cinesense.registry import connect, experiment_id, register_bundle

    connect(settings)
    with mlflow.start_run(experiment_id=experiment_id(settings)) as run:
        pass
    return register_bundle(settings, run.info.run_id, bundle, {"test_accuracy": "0.9"})


def set_champion(settings: Settings, version: str) -> None:
    from cinesense.registry import CHAMPION, connect

    connect(settings).set_registered_model_alias(settings.mlflow.model_name, CHAMPION, version)


def wait_for(condition, timeout_s: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.1)


@pytest.mark.slow
def test_fresh_install_waits_for_the_first_champion_and_survives_a_bad_one(
    tmp_path: Path, tiny_bundle: Path
) -> None:
    settings = serve_settings(tmp_path, poll_interval_s=0.2)
    settings = settings.model_copy(update={"mlflow": MlflowSettings(model_name="served")})
    with TestClient(create_app(settings)) as test_client:
        ready = test_client.get("/ready")
        assert ready.status_code == 503
        assert "no model has the alias 'champion' yet" in ready.json()["problem"]
        refused = test_client.post("/v1/predict", json={"texts": ["좋다"]})
        assert refused.status_code == 503 and refused.headers["Retry-After"]
        assert "No model is loaded yet" in refused.json()["error"]
        assert test_client.get("/v1/model").status_code == 503

        first = registered_version(settings, tiny_bundle)
        set_champion(settings, first)
        wait_for(lambda: test_client.get("/ready").status_code == 200)
        answer = test_client.post("/v1/predict", json={"texts": ["좋다"]}).json()
        assert answer["model_version"] == first
        model = test_client.get("/v1/model").json()
        assert model["aliases"] == ["challenger", "champion"]
        assert model["tags"]["test_accuracy"] == "0.9"

        corrupt = tmp_path / "corrupt"
        shutil.copytree(tiny_bundle, corrupt)
        (corrupt / "label_map.json").write_text("{}")
        second = registered_version(settings, corrupt)
        set_champion(settings, second)
        wait_for(lambda: test_client.get("/ready").json()["load_failures"] > 0)
        status = test_client.get("/ready").json()
        assert status["ready"] is True and status["version"] == first
        assert f"loading version {second} failed" in status["problem"]
        assert "corrupt" in status["problem"]
        still = test_client.post("/v1/predict", json={"texts": ["좋다"]})
        assert still.status_code == 200 and still.json()["model_version"] == first
        assert "cinesense_model_load_failures " in test_client.get("/metrics").text


def test_the_serving_path_needs_no_torch(tiny_bundle: Path) -> None:
    code = (
        "import sys\n"
        "sys.modules['torch'] = None; sys.modules['transformers'] = None\n"
        "from fastapi.testclient import TestClient\n"
        "from cinesense.config import ServeSettings, Settings\n"
        "from cinesense.serving.app import create_app\n"
        f"settings = Settings(serve=ServeSettings(bundle_dir={str(tiny_bundle)!r}))\n"
        "with TestClient(create_app(settings)) as client:\n"
        "    answer = client.post('/v1/predict', json={'texts': ['재밌다']})\n"
        "print(answer.status_code)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[-1] == "200"
