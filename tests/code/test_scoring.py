"""Batch scoring: predictions per review, aggregates per movie, only new reviews scored,
commits that never show half a batch, and no champion yet."""

from __future__ import annotations

import io
import math
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest

from cinesense.config import Settings
from cinesense.crawl.fakesite import FakeSite
from cinesense.crawl.jobs import crawl_movie, read_reviews
from cinesense.model.heads import LabelMap
from cinesense.model.onnx_predict import OnnxPredictor, ServedPrediction
from cinesense.pipelines.score import (
    PREDICTION_COLUMNS,
    movie_aggregates,
    read_manifest,
    read_movie_aggregates,
    read_predictions,
    score_frame,
    score_new_reviews,
    write_movie_aggregates,
)
from cinesense.storage import LocalStore, open_store
from tests.crawl_support import crawl_settings

MOVIE, SHOWN = "26000100", 34


class WordPredictor:
    """Positive when the review says 좋 (good), confident unless it says 무난 (so-so)."""

    label_map = LabelMap(validation_recall=(0.9, 0.8))

    def predict(self, texts: list[str], batch_size: int = 64) -> list[ServedPrediction]:
        out = []
        for text in texts:
            p = 0.55 if "무난" in text else 0.9 if "좋" in text else 0.2
            out.append(
                ServedPrediction(
                    "positive" if p >= 0.5 else "negative",
                    p,
                    max(p, 1 - p),
                    9.0 if p > 0.5 else 2.0,
                )
            )
        return out


@pytest.fixture
def site() -> Iterator[FakeSite]:
    with FakeSite() as fake:
        yield fake


def reviews(rows: list[tuple[str, str, str, int | None]]) -> pd.DataFrame:
    now = pd.Timestamp(datetime(2026, 11, 1, tzinfo=UTC))
    return pd.DataFrame(
        {
            "source": [r[0] for r in rows],
            "review_id": [str(i) for i in range(len(rows))],
            "movie_id": [r[1] for r in rows],
            "movie_title": [f"movie {r[1]}" for r in rows],
            "text": [r[2] for r in rows],
            "rating": pd.array([r[3] for r in rows], dtype="Int16"),
            "label": pd.array([None] * len(rows), dtype="Int8"),
            "created_at": now,
            "crawled_at": now,
        }
    )


def test_predictions_and_movie_aggregates() -> None:
    frame = reviews(
        [
            ("megabox", "m1", "정말 좋았어요", 10),
            ("megabox", "m1", "지루했어요", 2),
            ("megabox", "m1", "무난했어요", 6),
            ("cgv", "c1", "좋았어요", None),  # CGV carries no 1–10 rating
        ]
    )
    predictions = score_frame(WordPredictor(), frame, "7", uncertain_below=0.6, batch_id="b1")
    assert list(predictions.columns) == PREDICTION_COLUMNS
    assert list(predictions["predicted_label"]) == ["positive", "negative", "positive", "positive"]
    assert list(predictions["uncertain"]) == [False, False, True, False]
    assert set(predictions["model_version"]) == {"7"}
    movies = movie_aggregates(predictions).set_index("movie_id")
    m1, c1 = movies.loc["m1"], movies.loc["c1"]
    assert m1["reviews"] == 3 and m1["share_positive"] == pytest.approx(2 / 3)
    # Recall 0.9 negative, 0.8 positive: (2/3 − 0.1) / (0.8 − 0.1) of the reviews are positive.
    assert m1["estimated_share_positive"] == pytest.approx((2 / 3 - 0.1) / 0.7)
    assert m1["share_uncertain"] == pytest.approx(1 / 3)
    assert m1["mean_predicted_rating"] == pytest.approx((9 + 2 + 9) / 3)
    assert m1["mean_real_rating"] == pytest.approx(6.0) and m1["real_ratings"] == 3
    assert math.isnan(c1["mean_real_rating"]) and c1["real_ratings"] == 0

    rescored = predictions.iloc[[1]].assign(predicted_label="positive", model_version="8")
    rescored["scored_at"] = rescored["scored_at"] + pd.Timedelta(minutes=1)
    latest = movie_aggregates(pd.concat([predictions, rescored])).set_index("movie_id")
    assert latest.loc["m1", "share_positive"] == pytest.approx(1.0)  # the newer prediction wins
    assert latest.loc["m1", "model_versions"] == "7,8"


def test_only_reviews_stored_since_the_last_batch_are_scored(
    tmp_path: Path, site: FakeSite
) -> None:
    settings = crawl_settings(tmp_path, site.url)
    predictor = WordPredictor()
    assert score_new_reviews(settings, predictor=predictor)["skipped"] == "no new reviews"
    crawl_movie(settings, "megabox", MOVIE)
    first = score_new_reviews(settings, "run 1", predictor=predictor, model_version="3")
    assert first["scored"] == SHOWN and first["model_version"] == "3"
    assert "/scores/predictions/scored_date" in first["predictions"]  # a URI, = escaped
    assert first["predictions"].endswith("run_1.parquet")
    assert score_new_reviews(settings, predictor=predictor)["scored"] == 0

    site.add_reviews("megabox", MOVIE, 12)
    crawl_movie(settings, "megabox", MOVIE)
    second = score_new_reviews(settings, "run 2", predictor=predictor, model_version="3")
    stored = read_reviews(settings)
    assert second["scored"] == len(stored) - SHOWN > 0
    predictions = read_predictions(settings)
    assert len(predictions) == len(stored)
    assert not predictions.duplicated(["source", "review_id"]).any()
    manifest = read_manifest(open_store(settings))
    assert [b.batch_id for b in manifest.batches] == ["run_1", "run_2"]
    assert manifest.crawled_until == stored["crawled_at"].max()

    result = write_movie_aggregates(settings)
    assert result["movies"] == 1 and result["aggregates"].endswith("/scores/movies.parquet")
    movie = read_movie_aggregates(settings).iloc[0]
    assert movie["reviews"] == len(stored)
    assert movie["mean_real_rating"] == pytest.approx(stored["rating"].astype(float).mean())
    expected = (predictions["predicted_label"] == "positive").mean()
    assert movie["share_positive"] == pytest.approx(expected)


def test_parts_scored_before_models_kept_their_recall_give_no_estimate(
    tmp_path: Path, site: FakeSite
) -> None:
    settings = crawl_settings(tmp_path, site.url)
    crawl_movie(settings, "megabox", MOVIE)
    score_new_reviews(settings, "old", predictor=WordPredictor(), model_version="2")
    objects = open_store(settings)
    key = read_manifest(objects).parts[0].key
    old = pd.read_parquet(io.BytesIO(objects.get_bytes(key)))
    objects.put_bytes(key, old.drop(columns=["recall_negative", "recall_positive"]).to_parquet())
    write_movie_aggregates(settings)
    movie = read_movie_aggregates(settings).iloc[0]
    assert movie["share_positive"] > 0 and pd.isna(movie["estimated_share_positive"])


def test_a_failed_commit_leaves_no_part_behind(
    tmp_path: Path, site: FakeSite, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = crawl_settings(tmp_path, site.url)
    crawl_movie(settings, "megabox", MOVIE)
    original = LocalStore.put_bytes

    def refuse_manifest(self: LocalStore, key: str, data: bytes) -> None:
        if key.endswith("scores/manifest.json"):
            raise OSError("disk full")
        original(self, key, data)

    monkeypatch.setattr(LocalStore, "put_bytes", refuse_manifest)
    with pytest.raises(OSError, match="disk full"):
        score_new_reviews(settings, predictor=WordPredictor())
    monkeypatch.undo()
    assert not LocalStore(settings.home / "storage").list("scores/")
    assert score_new_reviews(settings, predictor=WordPredictor())["scored"] == SHOWN


def test_no_champion_yet_means_the_reviews_wait(tmp_path: Path, site: FakeSite) -> None:
    settings = crawl_settings(tmp_path, site.url)
    crawl_movie(settings, "megabox", MOVIE)
    result = score_new_reviews(settings)  # the embedded registry has no model at all
    assert result == {"scored": 0, "skipped": "no champion yet", "predictions": None}
    assert read_manifest(open_store(settings)).crawled_until is None


@pytest.mark.slow
def test_scores_with_a_real_onnx_bundle(tmp_path: Path, tiny_bundle: Path) -> None:
    frame = reviews([("megabox", "m1", "배우들 연기가 정말 좋았어요", 9)])
    predictor = OnnxPredictor.from_bundle(tiny_bundle, threads=1)
    predictions = score_frame(predictor, frame, "1", Settings().serve.uncertain_below, "b")
    assert predictions["predicted_label"].iloc[0] in {"positive", "negative"}
    assert 1 <= predictions["predicted_rating"].iloc[0] <= 10
