"""Stage *score*: stored reviews scored by the champion, per review and per movie.

Layout in object storage under ``scores/`` (beside the review store)::

    predictions/scored_date=2026-11-23/batch=<id>.parquet   one row per scored review
    movies.parquet                                          one row per movie
    manifest.json                                           parts, watermark, batch stats

:func:`score_new_reviews` scores the reviews stored since the last batch (by crawl time:
the manifest's ``crawled_until``) with the model behind the ``champion`` alias and
commits a part; :func:`write_movie_aggregates` recomputes every movie's share of reviews
labelled positive, the share of positive reviews estimated from it (model/quantify.py, with
the recall each prediction's model kept), mean predicted rating and — where the source
has ratings — mean real rating from the latest prediction of each review. As in the
review store, parts are written before the manifest that lists them, and readers follow
the manifest only. Each batch's summary (model version, share positive, mean probability
and confidence, share uncertain) stays in the manifest, a series to watch for drift.
"""

from __future__ import annotations

import io
import logging
import math
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

import pandas as pd
from pydantic import BaseModel, Field

from cinesense.config import Settings
from cinesense.files import safe_name
from cinesense.model.quantify import estimated_share
from cinesense.storage import ObjectStore, open_store

if TYPE_CHECKING:
    from cinesense.model.heads import LabelMap
    from cinesense.model.onnx_predict import ServedPrediction

log = logging.getLogger(__name__)

PREFIX = "scores"
KEEP_BATCHES = 500
PREDICTION_COLUMNS = [
    "source",
    "review_id",
    "movie_id",
    "movie_title",
    "created_at",
    "crawled_at",
    "rating",
    "label",
    "predicted_label",
    "probability_positive",
    "confidence",
    "predicted_rating",
    "uncertain",
    "truncated",
    "recall_negative",
    "recall_positive",
    "model_version",
    "scored_at",
    "batch_id",
]
MOVIE_COLUMNS = [
    "source",
    "movie_id",
    "movie_title",
    "reviews",
    "share_positive",
    "estimated_share_positive",
    "share_uncertain",
    "mean_probability_positive",
    "mean_predicted_rating",
    "mean_real_rating",
    "real_ratings",
    "newest_review_at",
    "model_versions",
    "updated_at",
]


class Predictor(Protocol):
    label_map: LabelMap

    def predict(self, texts: list[str], batch_size: int = 64) -> Sequence[ServedPrediction]: ...


class ScorePart(BaseModel):
    key: str
    rows: int
    batch_id: str


class BatchSummary(BaseModel):
    batch_id: str
    model_version: str
    scored_at: datetime
    reviews: int
    share_positive: float
    share_uncertain: float
    mean_probability_positive: float
    mean_confidence: float


class ScoreManifest(BaseModel):
    parts: list[ScorePart] = Field(default_factory=list)
    crawled_until: datetime | None = Field(
        None, description="Reviews stored up to this crawl time have been scored."
    )
    batches: list[BatchSummary] = Field(default_factory=list)


def manifest_key(prefix: str = PREFIX) -> str:
    return f"{prefix}/manifest.json"


def read_manifest(objects: ObjectStore, prefix: str = PREFIX) -> ScoreManifest:
    key = manifest_key(prefix)
    if not objects.exists(key):
        return ScoreManifest()
    return ScoreManifest.model_validate_json(objects.get_bytes(key))


def score_frame(
    predictor: Predictor,
    reviews: pd.DataFrame,
    model_version: str,
    uncertain_below: float,
    batch_id: str,
    scored_at: datetime | None = None,
) -> pd.DataFrame:
    """One prediction row per review (the review store's columns in, PREDICTION_COLUMNS out)."""
    scored_at = scored_at or datetime.now(UTC)
    predictions = predictor.predict(reviews["text"].astype(str).tolist()) if len(reviews) else []
    frame = reviews.reset_index(drop=True)
    recall = predictor.label_map.validation_recall or (math.nan, math.nan)
    return pd.DataFrame(
        {
            "source": frame["source"].astype(str),
            "review_id": frame["review_id"].astype(str),
            "movie_id": frame["movie_id"].astype(str),
            "movie_title": frame["movie_title"].astype(str),
            "created_at": frame["created_at"],
            "crawled_at": frame["crawled_at"],
            "rating": frame["rating"].astype("Int16"),
            "label": frame["label"].astype("Int8"),
            "predicted_label": [p.label for p in predictions],
            "probability_positive": [p.probability_positive for p in predictions],
            "confidence": [p.confidence for p in predictions],
            "predicted_rating": [p.rating for p in predictions],
            "uncertain": [p.shown_label(uncertain_below) == "uncertain" for p in predictions],
            "truncated": [p.truncated for p in predictions],
            "recall_negative": recall[0],
            "recall_positive": recall[1],
            "model_version": model_version,
            "scored_at": pd.Timestamp(scored_at),
            "batch_id": batch_id,
        },
        columns=PREDICTION_COLUMNS,
    )


def movie_aggregates(predictions: pd.DataFrame, now: datetime | None = None) -> pd.DataFrame:
    """Per movie, from the latest prediction of each review: how many, the share predicted
    positive (and uncertain), the mean predicted rating and, where the source gives
    ratings, the mean real one."""
    if predictions.empty:
        return pd.DataFrame(columns=MOVIE_COLUMNS)
    latest = predictions.sort_values("scored_at", kind="stable").drop_duplicates(
        ["source", "review_id"], keep="last"
    )
    rows = []
    for (source, movie_id), group in latest.groupby(["source", "movie_id"], sort=True):
        real = group["rating"].dropna()
        share_positive = float((group["predicted_label"] == "positive").mean())
        rows.append(
            {
                "source": source,
                "movie_id": movie_id,
                "movie_title": group["movie_title"].iloc[-1],
                "reviews": len(group),
                "share_positive": share_positive,
                "estimated_share_positive": estimated_share(share_positive, _recall(group)),
                "share_uncertain": float(group["uncertain"].astype(bool).mean()),
                "mean_probability_positive": float(group["probability_positive"].mean()),
                "mean_predicted_rating": float(group["predicted_rating"].mean()),
                "mean_real_rating": float(real.mean()) if len(real) else math.nan,
                "real_ratings": len(real),
                "newest_review_at": group["created_at"].max(),
                "model_versions": ",".join(sorted(set(group["model_version"].astype(str)))),
                "updated_at": pd.Timestamp(now or datetime.now(UTC)),
            }
        )
    return pd.DataFrame(rows, columns=MOVIE_COLUMNS)


def _recall(predictions: pd.DataFrame) -> tuple[float, float] | None:
    """The models' mean validation recall over these predictions; None where a model
    kept none (bundles and prediction parts before 2026-12-07)."""
    recall = predictions[["recall_negative", "recall_positive"]].astype(float)
    if recall.isna().any().any():
        return None
    return float(recall["recall_negative"].mean()), float(recall["recall_positive"].mean())


def batch_summary(predictions: pd.DataFrame, batch_id: str, version: str) -> BatchSummary:
    return BatchSummary(
        batch_id=batch_id,
        model_version=version,
        scored_at=predictions["scored_at"].iloc[0],
        reviews=len(predictions),
        share_positive=round(float((predictions["predicted_label"] == "positive").mean()), 4),
        share_uncertain=round(float(predictions["uncertain"].mean()), 4),
        mean_probability_positive=round(float(predictions["probability_positive"].mean()), 4),
        mean_confidence=round(float(predictions["confidence"].mean()), 4),
    )


def _parquet(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False, compression="zstd")
    return buffer.getvalue()


def score_new_reviews(
    settings: Settings,
    batch_id: str | None = None,
    *,
    predictor: Predictor | None = None,
    model_version: str | None = None,
    store: ObjectStore | None = None,
    prefix: str = PREFIX,
) -> dict[str, Any]:
    """Score the reviews stored since the last batch with the champion and commit them.

    Returns the counts and the key of the predictions part; ``scored`` is 0 (and
    ``skipped`` says why) when there is nothing new or no champion yet. Pass
    ``predictor`` and ``model_version`` to score with a model that is not registered.
    """
    from cinesense.crawl.jobs import read_reviews

    objects = store or open_store(settings)
    manifest = read_manifest(objects, prefix)
    reviews = read_reviews(settings, store=objects)
    if manifest.crawled_until is not None:
        reviews = reviews[reviews["crawled_at"] > pd.Timestamp(manifest.crawled_until)]
    if reviews.empty:
        log.info("no reviews stored since %s; nothing to score", manifest.crawled_until)
        return {"scored": 0, "skipped": "no new reviews", "predictions": None}
    if predictor is None:
        from cinesense.registry import CHAMPION, alias_version, load_predictor

        if alias_version(settings, CHAMPION) is None:
            log.warning("no champion in the registry yet: %d reviews wait", len(reviews))
            return {"scored": 0, "skipped": "no champion yet", "predictions": None}
        predictor, model_version = load_predictor(settings, CHAMPION, settings.num_threads)
    version = model_version or "unregistered"
    batch = safe_name(batch_id or uuid.uuid4().hex[:12], "batch")
    predictions = score_frame(predictor, reviews, version, settings.serve.uncertain_below, batch)
    scored_at = predictions["scored_at"].iloc[0]
    key = f"{prefix}/predictions/scored_date={scored_at:%Y-%m-%d}/batch={batch}.parquet"
    objects.put_bytes(key, _parquet(predictions))
    try:
        summary = batch_summary(predictions, batch, version)
        manifest.parts = [p for p in manifest.parts if p.key != key]
        manifest.parts.append(ScorePart(key=key, rows=len(predictions), batch_id=batch))
        manifest.crawled_until = reviews["crawled_at"].max().to_pydatetime()
        manifest.batches = [*manifest.batches, summary][-KEEP_BATCHES:]
        objects.put_bytes(manifest_key(prefix), manifest.model_dump_json(indent=1).encode())
    except BaseException:
        objects.delete(key)  # not listed by any manifest: no reader would see it
        raise
    log.info(
        "scored %d reviews of %d movies with version %s: %.0f%% positive",
        len(predictions),
        predictions[["source", "movie_id"]].drop_duplicates().shape[0],
        version,
        100 * summary.share_positive,
    )
    return {
        "scored": len(predictions),
        "predictions": objects.uri(key),
        "model_version": version,
        "share_positive": summary.share_positive,
    }


def read_predictions(
    settings: Settings, store: ObjectStore | None = None, prefix: str = PREFIX
) -> pd.DataFrame:
    """Every committed prediction (all batches)."""
    objects = store or open_store(settings)
    parts = read_manifest(objects, prefix).parts
    frames = [pd.read_parquet(io.BytesIO(objects.get_bytes(part.key))) for part in parts]
    frames = [frame for frame in frames if not frame.empty]
    if not frames:
        return pd.DataFrame(columns=PREDICTION_COLUMNS)
    # Parts written before a column existed read it as missing.
    return pd.concat(frames, ignore_index=True).reindex(columns=PREDICTION_COLUMNS)


def write_movie_aggregates(
    settings: Settings, store: ObjectStore | None = None, prefix: str = PREFIX
) -> dict[str, Any]:
    """Recompute the per-movie table from every prediction and store it."""
    objects = store or open_store(settings)
    movies = movie_aggregates(read_predictions(settings, objects, prefix))
    key = f"{prefix}/movies.parquet"
    objects.put_bytes(key, _parquet(movies))
    log.info("wrote aggregates of %d movies to %s", len(movies), objects.uri(key))
    return {"movies": len(movies), "aggregates": objects.uri(key)}


def read_movie_aggregates(
    settings: Settings, store: ObjectStore | None = None, prefix: str = PREFIX
) -> pd.DataFrame:
    objects = store or open_store(settings)
    key = f"{prefix}/movies.parquet"
    if not objects.exists(key):
        return pd.DataFrame(columns=MOVIE_COLUMNS)
    return pd.read_parquet(io.BytesIO(objects.get_bytes(key)))
