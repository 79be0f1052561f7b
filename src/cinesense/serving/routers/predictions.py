"""``/v1/predict`` and ``/v1/analyze``: the model's answers for review texts.

The request bodies' limits come from settings (so OpenAPI states them), hence a router
built per app by :func:`build_router`. No annotations import from __future__ here: FastAPI
reads those request models from the handlers' annotations.
"""

import asyncio
import logging
import threading
from collections import Counter
from typing import Any

from fastapi import APIRouter, Depends, Request

from cinesense.config import ServeSettings
from cinesense.model.onnx_predict import ServedPrediction
from cinesense.model.quantify import estimated_share_of
from cinesense.serving.keywords import KeywordExtractor
from cinesense.serving.problems import ERRORS
from cinesense.serving.routers.deps import BatcherDep, MetricsDep, require_json
from cinesense.serving.schemas import (
    AnalyzedReview,
    AnalyzeResponse,
    ClassRecall,
    Prediction,
    PredictResponse,
    request_models,
)

log = logging.getLogger("cinesense.serving")


def build_router(limits: ServeSettings) -> APIRouter:
    PredictRequest, AnalyzeRequest = request_models(limits)
    router = APIRouter(tags=["sentiment"], dependencies=[Depends(require_json)], responses=ERRORS)

    @router.post("/v1/predict")
    async def predict(
        body: PredictRequest,  # type: ignore[valid-type]
        batcher: BatcherDep,
        metrics: MetricsDep,
    ) -> PredictResponse:
        """Label, probability and 1-10 rating for each text, in order."""
        texts = body.texts  # type: ignore[attr-defined]
        if limits.log_texts:
            log.debug("predict texts", extra={"texts": texts})
        served, model = await batcher.predict(texts)
        predictions = [prediction(p, limits.uncertain_below) for p in served]
        for label, count in Counter(p.label for p in predictions).items():
            metrics.predictions.labels(label).inc(count)
        return PredictResponse(
            model_version=model.version, quantization=model.quantization, predictions=predictions
        )

    @router.post("/v1/analyze")
    async def analyze(
        body: AnalyzeRequest,  # type: ignore[valid-type]
        batcher: BatcherDep,
        request: Request,
    ) -> AnalyzeResponse:
        """Aggregate view of many reviews: shares, ratings, distinctive keywords, items."""
        reviews = body.reviews  # type: ignore[attr-defined]
        served, model = await batcher.predict([r.text for r in reviews])
        items = [
            AnalyzedReview(
                **prediction(p, limits.uncertain_below).model_dump(), real_rating=r.rating
            )
            for p, r in zip(served, reviews, strict=True)
        ]
        extractor = await asyncio.to_thread(request.app.state.keywords.get)
        top = await asyncio.to_thread(
            extractor.top_keywords,
            [r.text for r, i in zip(reviews, items, strict=True) if i.label == "positive"],
            [r.text for r, i in zip(reviews, items, strict=True) if i.label == "negative"],
            limits.keyword_top_k,
        )
        recall = model.predictor.label_map.validation_recall
        return aggregate(model.version, items, extractor.method, top, recall)

    return router


class LazyKeywords:
    """Starts the morphology analyser (a JVM: seconds) once, off the request path."""

    def __init__(self) -> None:
        self._extractor: KeywordExtractor | None = None
        self._lock = threading.Lock()

    def get(self) -> KeywordExtractor:
        with self._lock:
            if self._extractor is None:
                self._extractor = KeywordExtractor()
            return self._extractor


def prediction(served: ServedPrediction, uncertain_below: float) -> Prediction:
    return Prediction(
        label=served.shown_label(uncertain_below),
        probability_positive=served.probability_positive,
        confidence=served.confidence,
        rating=served.rating,
        truncated=served.truncated,
    )


def aggregate(
    version: str,
    items: list[AnalyzedReview],
    method: str,
    keywords: dict[str, Any],
    recall: tuple[float, float] | None,
) -> AnalyzeResponse:
    count = len(items)
    labels = Counter(item.label for item in items)
    predicted = Counter(str(round(item.rating)) for item in items)
    real = [item.real_rating for item in items if item.real_rating is not None]
    return AnalyzeResponse(
        model_version=version,
        count=count,
        share_positive=round(labels["positive"] / count, 4),
        share_negative=round(labels["negative"] / count, 4),
        share_uncertain=round(labels["uncertain"] / count, 4),
        estimated_share_positive=_rounded(
            estimated_share_of([item.probability_positive for item in items], recall)
        ),
        model_recall=ClassRecall(negative=recall[0], positive=recall[1]) if recall else None,
        mean_predicted_rating=round(sum(item.rating for item in items) / count, 2),
        mean_real_rating=round(sum(real) / len(real), 2) if real else None,
        rating_histogram={str(r): predicted[str(r)] for r in range(1, 11)},
        real_rating_histogram=(
            {str(r): sum(1 for x in real if x == r) for r in range(1, 11)} if real else None
        ),
        keyword_method=method,
        keywords=keywords,
        items=items,
    )


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 4)
