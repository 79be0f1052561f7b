"""Read endpoints for the analysis UI: crawled movies with their scores, and the models.

Movies come from the review store (``cinesense.crawl.jobs``: manifests and reviews) and
the scoring output (``cinesense.pipelines.score``: per-review predictions and per-movie
aggregates in ``scores/``); models from the registry (``cinesense.registry``) or, when
the service serves a bundle directory, that bundle alone. Handlers are plain ``def``:
FastAPI runs them in its thread pool, off the event loop, since they read storage and
MLflow synchronously.
"""

from __future__ import annotations

import math
import threading
from datetime import datetime
from typing import Annotated, Any, Literal

import pandas as pd
from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException

from cinesense.config import Settings, get_settings
from cinesense.errors import CinesenseError

router = APIRouter()
MOVIE_ID = r"^[A-Za-z0-9_-]{1,40}$"
SOURCE = Literal["megabox", "cgv"]


def settings_of(request: Request) -> Settings:
    """The app's settings (``app.state.settings``), else the process-wide ones."""
    settings = getattr(request.app.state, "settings", None)
    return settings if isinstance(settings, Settings) else get_settings()


SettingsDep = Annotated[Settings, Depends(settings_of)]


# --- response bodies -----------------------------------------------------------------


class MovieSummary(BaseModel):
    source: str
    movie_id: str
    title: str
    reviews: int = Field(description="Reviews in the review store.")
    scored_reviews: int = Field(description="Of those, reviews the champion has scored.")
    share_positive: float | None = Field(description="Share of scored reviews labelled positive.")
    estimated_share_positive: float | None = Field(
        None,
        description="Share of positive reviews estimated from the labels and the model's "
        "validation recall of each class (adjusted classify-and-count): labels miss some "
        "reviews of each class, so a mostly positive movie has fewer positive labels than "
        "positive reviews. None where the model kept no recall.",
    )
    share_uncertain: float | None
    mean_predicted_rating: float | None
    mean_real_rating: float | None = Field(description="The site's own ratings, where it has.")
    newest_review_at: datetime | None
    last_crawled_at: datetime | None


class MoviesResponse(BaseModel):
    movies: list[MovieSummary]


class DayCounts(BaseModel):
    date: str
    positive: int
    negative: int
    uncertain: int


class ScoredReview(BaseModel):
    review_id: str
    text: str
    created_at: datetime | None
    real_rating: int | None
    label: Literal["positive", "negative", "uncertain"] | None = Field(
        description="None until the review is scored."
    )
    probability_positive: float | None
    confidence: float | None
    predicted_rating: float | None
    truncated: bool | None


class KeywordCount(BaseModel):
    word: str
    reviews: int


class MovieDetail(BaseModel):
    movie: MovieSummary
    timeline: list[DayCounts] = Field(description="Scored reviews per review date and label.")
    predicted_rating_histogram: dict[str, int]
    real_rating_histogram: dict[str, int] | None
    keywords: dict[str, list[KeywordCount]]
    keyword_method: str
    most_positive: list[ScoredReview]
    most_negative: list[ScoredReview]
    page: int
    page_size: int
    total: int
    reviews: list[ScoredReview]


class GateInfo(BaseModel):
    decision: str | None = Field(description="promoted / rejected / None (not gated yet).")
    reason: str | None
    challenger_accuracy: float | None
    champion_version: str | None
    champion_accuracy: float | None
    decided_at: str | None


class ModelVersion(BaseModel):
    version: str
    aliases: list[str]
    run_id: str | None
    test_accuracy: float | None
    baseline_accuracy: float | None
    quantization: str | None
    size_mb: float | None
    gate: GateInfo


class HistoryEvent(BaseModel):
    kind: str
    version: str
    reason: str
    at: str


class ModelsResponse(BaseModel):
    registry: bool = Field(description="False when the service serves a bundle directory.")
    model_name: str
    champion: str | None = Field(description="The version the service answers with now.")
    champion_since: str | None
    problem: str | None = Field(description="Why no model is served, when none is.")
    tracking_uri: str | None = Field(description="MLflow server, for links to runs.")
    versions: list[ModelVersion]
    history: list[HistoryEvent]


class ShowingMovie(BaseModel):
    source: str
    movie_id: str
    title: str
    release_date: str | None = Field(description="YYYYMMDD, where the site gives it.")
    rank: int | None = Field(description="The site's order (booking rank).")
    booking_rate: float | None
    crawled_reviews: int = Field(description="Its reviews in the review store (0: not crawled).")


class NowShowingResponse(BaseModel):
    movies: list[ShowingMovie]
    fetched_at: dict[str, datetime] = Field(
        description="When each source's list was read (by the crawl_reviews DAG)."
    )


# --- movies --------------------------------------------------------------------------


@router.get("/v1/movies", tags=["movies"])
def movies(
    settings: SettingsDep, source: Annotated[SOURCE | None, Query()] = None
) -> MoviesResponse:
    """Crawled movies with their titles, review counts and score aggregates."""
    stored, aggregates = _movie_tables(settings, source)
    return MoviesResponse(movies=[_summary(row, aggregates) for row in _records(stored)])


@router.get("/v1/now-showing", tags=["movies"])
def now_showing(
    settings: SettingsDep,
    q: Annotated[str, Query(max_length=100, description="Part of the title.")] = "",
    source: Annotated[SOURCE | None, Query()] = None,
) -> NowShowingResponse:
    """Search the movies now showing, as the last crawl read the sites' lists (the service
    itself never crawls); each says how many of its reviews are stored."""
    from cinesense.crawl.catalog import read_listings, search
    from cinesense.crawl.jobs import list_movies
    from cinesense.storage import open_store

    listings = _guard(lambda: read_listings(open_store(settings)))
    stored = _guard(lambda: list_movies(settings, source))
    counts = {(r["source"], r["movie_id"]): int(r["reviews"]) for r in _records(stored)}
    return NowShowingResponse(
        movies=[
            ShowingMovie(
                **movie, crawled_reviews=counts.get((movie["source"], movie["movie_id"]), 0)
            )
            for movie in search(listings, q, source)
        ],
        fetched_at={name: listing["fetched_at"] for name, listing in listings.items()},
    )


@router.get(
    "/v1/movies/{source}/{movie_id}",
    tags=["movies"],
    responses={404: {"description": "No such crawled movie."}},
)
def movie(
    settings: SettingsDep,
    source: SOURCE,
    movie_id: Annotated[str, Path(pattern=MOVIE_ID)],
    page: Annotated[int, Query(ge=1)] = 1,
    page_size: Annotated[int, Query(ge=1, le=200)] = 50,
    order: Annotated[Literal["newest", "positive", "negative"], Query()] = "newest",
) -> MovieDetail:
    """One movie: aggregates, labels over time, rating histograms, keywords per sentiment,
    the most positive and negative reviews, and a page of its reviews with their scores."""
    from cinesense.crawl.jobs import read_reviews
    from cinesense.pipelines.score import read_predictions

    stored, aggregates = _movie_tables(settings, source)
    found = stored[stored["movie_id"] == movie_id]
    if found.empty:
        raise HTTPException(
            404, f"No crawled movie {source}/{movie_id}: crawl it first (GET /v1/movies lists)."
        )
    summary = _summary(_records(found)[0], aggregates)
    reviews = _guard(lambda: read_reviews(settings, source, movie_id))
    predictions = _guard(lambda: read_predictions(settings))
    scored = _join(reviews, predictions, source, movie_id)
    done = scored[scored["label"].notna()]
    keywords, method = _keywords(done, settings.serve.keyword_top_k)
    ordered = _ordered(scored, order)
    start = (page - 1) * page_size
    return MovieDetail(
        movie=summary,
        timeline=_timeline(done),
        predicted_rating_histogram=_histogram(done["predicted_rating"].round()),
        real_rating_histogram=(
            _histogram(scored["rating"]) if scored["rating"].notna().any() else None
        ),
        keywords=keywords,
        keyword_method=method,
        most_positive=_items(_ordered(done, "positive").head(3)),
        most_negative=_items(_ordered(done, "negative").head(3)),
        page=page,
        page_size=page_size,
        total=len(scored),
        reviews=_items(ordered.iloc[start : start + page_size]),
    )


def _guard(read: Any) -> Any:
    try:
        return read()
    except CinesenseError as error:  # storage unreachable, refused, ...
        raise HTTPException(503, f"Reading the review store failed: {error}") from error


def _movie_tables(settings: Settings, source: str | None) -> tuple[pd.DataFrame, pd.DataFrame]:
    from cinesense.crawl.jobs import list_movies
    from cinesense.pipelines.score import read_movie_aggregates

    stored = _guard(lambda: list_movies(settings, source))
    aggregates = _guard(lambda: read_movie_aggregates(settings))
    return stored, aggregates


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [{k: _plain(v) for k, v in row.items()} for row in frame.to_dict("records")]


def _plain(value: Any) -> Any:
    if value is None or value is pd.NaT or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    return None if pd.api.types.is_scalar(value) and pd.isna(value) else value


def _summary(row: dict[str, Any], aggregates: pd.DataFrame) -> MovieSummary:
    match = aggregates[
        (aggregates["source"] == row["source"]) & (aggregates["movie_id"] == row["movie_id"])
    ]
    scores = _records(match)[0] if len(match) else {}
    return MovieSummary(
        source=row["source"],
        movie_id=row["movie_id"],
        title=row.get("title") or scores.get("movie_title") or "",
        reviews=int(row["reviews"]),
        scored_reviews=int(scores.get("reviews") or 0),
        share_positive=scores.get("share_positive"),
        estimated_share_positive=scores.get("estimated_share_positive"),
        share_uncertain=scores.get("share_uncertain"),
        mean_predicted_rating=scores.get("mean_predicted_rating"),
        mean_real_rating=scores.get("mean_real_rating"),
        newest_review_at=row.get("newest_review_at"),
        last_crawled_at=row.get("last_crawled_at"),
    )


def _join(
    reviews: pd.DataFrame, predictions: pd.DataFrame, source: str, movie_id: str
) -> pd.DataFrame:
    """Each stored review with its latest prediction (label None when not scored yet)."""
    mine = predictions[(predictions["source"] == source) & (predictions["movie_id"] == movie_id)]
    latest = mine.sort_values("scored_at", kind="stable").drop_duplicates("review_id", keep="last")
    columns = ["review_id", "predicted_label", "probability_positive", "confidence"]
    columns += ["predicted_rating", "uncertain", "truncated"]
    joined = reviews[["review_id", "text", "created_at", "rating"]].merge(
        latest[columns], on="review_id", how="left"
    )
    uncertain = joined["uncertain"].astype("boolean").fillna(False).astype(bool)
    label = joined["predicted_label"].astype(object).where(~uncertain, "uncertain")
    return joined.assign(label=label.where(joined["predicted_label"].notna(), None))


def _ordered(frame: pd.DataFrame, order: str) -> pd.DataFrame:
    if order == "newest":
        return frame.sort_values("created_at", ascending=False, na_position="last", kind="stable")
    ascending = order == "negative"
    return frame.sort_values(
        "probability_positive", ascending=ascending, na_position="last", kind="stable"
    )


def _items(frame: pd.DataFrame) -> list[ScoredReview]:
    return [
        ScoredReview(
            review_id=str(row["review_id"]),
            text=str(row["text"]),
            created_at=row["created_at"],
            real_rating=None if row["rating"] is None else int(row["rating"]),
            label=row["label"],
            probability_positive=row["probability_positive"],
            confidence=row["confidence"],
            predicted_rating=row["predicted_rating"],
            truncated=None if row["truncated"] is None else bool(row["truncated"]),
        )
        for row in _records(frame)
    ]


def _timeline(done: pd.DataFrame) -> list[DayCounts]:
    dated = done[done["created_at"].notna()]
    if dated.empty:
        return []
    days = dated["created_at"].dt.tz_convert("Asia/Seoul").dt.strftime("%Y-%m-%d")
    counts = pd.crosstab(days, dated["label"])
    return [
        DayCounts(
            date=str(day),
            positive=int(row.get("positive", 0)),
            negative=int(row.get("negative", 0)),
            uncertain=int(row.get("uncertain", 0)),
        )
        for day, row in counts.iterrows()
    ]


def _histogram(values: pd.Series) -> dict[str, int]:
    present = values.dropna().astype(int).clip(1, 10)
    return {str(r): int((present == r).sum()) for r in range(1, 11)}


_extractor_lock = threading.Lock()
_extractor: Any = None


def _keywords(done: pd.DataFrame, top_k: int) -> tuple[dict[str, list[KeywordCount]], str]:
    global _extractor
    from cinesense.serving.keywords import KeywordExtractor

    with _extractor_lock:  # one analyser per process (KoNLPy starts a JVM once)
        if _extractor is None:
            _extractor = KeywordExtractor()
    positive = done.loc[done["label"] == "positive", "text"].astype(str).tolist()
    negative = done.loc[done["label"] == "negative", "text"].astype(str).tolist()
    top = _extractor.top_keywords(positive, negative, top_k) if positive or negative else {}
    found = {
        label: [KeywordCount.model_validate(_as_dict(k)) for k in top.get(label, [])]
        for label in ("positive", "negative")
    }
    return found, str(_extractor.method)


def _as_dict(keyword: Any) -> dict[str, Any]:
    return keyword if isinstance(keyword, dict) else keyword.model_dump()


# --- models --------------------------------------------------------------------------


@router.get("/v1/models", tags=["model"])
def models(request: Request, settings: SettingsDep) -> ModelsResponse:
    """The champion, every registered version with its gate decision, and the champion
    history (promotions and rollbacks)."""
    from cinesense.serving.models import DirectorySource

    manager = request.app.state.manager
    current = manager.current
    details = current.details if current else {}
    answer: dict[str, Any] = {
        "model_name": str(details.get("name") or settings.mlflow.model_name),
        "champion": current.version if current else None,
        "champion_since": details.get("champion_since"),
        "problem": manager.problem if current is None else None,
    }
    if isinstance(manager.source, DirectorySource):
        version = _bundle_version(current) if current else []
        return ModelsResponse(
            registry=False, tracking_uri=None, versions=version, history=[], **answer
        )
    try:
        versions, history = _registry(settings)
    except CinesenseError as error:
        raise HTTPException(503, f"The model registry cannot be read: {error}") from error
    return ModelsResponse(
        registry=True,
        tracking_uri=settings.mlflow.tracking_uri,
        versions=versions,
        history=history,
        **answer,
    )


def _bundle_version(current: Any) -> list[ModelVersion]:
    metrics = current.details.get("metrics", {})
    manifest = getattr(current.predictor, "manifest", {}) or {}
    size = manifest.get("sizes_mb", {}).get(f"model.{current.quantization}.onnx")
    return [
        ModelVersion(
            version=current.version,
            aliases=[],
            run_id=None,
            test_accuracy=_number(metrics.get(f"accuracy_{current.quantization}")),
            baseline_accuracy=None,
            quantization=current.quantization,
            size_mb=_number(size),
            gate=GateInfo(
                decision=None,
                reason="served from a bundle directory (no registry)",
                challenger_accuracy=None,
                champion_version=None,
                champion_accuracy=None,
                decided_at=None,
            ),
        )
    ]


def _registry(settings: Settings) -> tuple[list[ModelVersion], list[HistoryEvent]]:
    from mlflow.exceptions import MlflowException

    from cinesense.registry import champion_history, connect, list_versions

    rows = list_versions(settings)[-50:]
    client = connect(settings)
    try:
        history = champion_history(client, settings.mlflow.model_name) if rows else []
        metrics = {
            str(row["run_id"]): client.get_run(str(row["run_id"])).data.metrics
            for row in rows
            if row.get("run_id")
        }
    except MlflowException as error:
        raise CinesenseError(str(error)) from error
    versions = [_version(row, metrics.get(str(row.get("run_id")), {})) for row in rows]
    events = [HistoryEvent.model_validate(event) for event in history]
    return list(reversed(versions)), list(reversed(events))


def _version(row: dict[str, Any], metrics: dict[str, float]) -> ModelVersion:
    tags: dict[str, str] = row.get("tags") or {}
    quantization = tags.get("served_format")
    size = metrics.get(f"size_mb_onnx_{quantization}") if quantization else None
    return ModelVersion(
        version=str(row["version"]),
        aliases=list(row.get("aliases") or []),
        run_id=row.get("run_id"),
        test_accuracy=_number(tags.get("test_accuracy") or metrics.get("test_accuracy")),
        baseline_accuracy=_number(
            tags.get("baseline_accuracy") or metrics.get("baseline_test_accuracy")
        ),
        quantization=quantization,
        size_mb=_number(size),
        gate=GateInfo(
            decision=tags.get("gate.decision"),
            reason=tags.get("gate.reason"),
            challenger_accuracy=_number(tags.get("gate.challenger_accuracy")),
            champion_version=tags.get("gate.champion_version"),
            champion_accuracy=_number(tags.get("gate.champion_accuracy")),
            decided_at=tags.get("gate.decided_at"),
        ),
    )


def _number(value: Any) -> float | None:
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        return None
