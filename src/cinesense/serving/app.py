"""The inference service: FastAPI over the micro-batcher and the live model.

``create_app()`` builds it from settings; ``fastapi/main.py`` and ``cinesense serve`` run it
under uvicorn. No annotations import from __future__ here: FastAPI reads the request
models, built from settings inside ``create_app``, from the handlers' annotations.
"""

import asyncio
import logging
import secrets
import threading
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Header, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.exceptions import HTTPException

from cinesense import __version__
from cinesense.config import Settings, get_settings
from cinesense.model.onnx_predict import ServedPrediction
from cinesense.serving.batching import MicroBatcher, NotReadyError
from cinesense.serving.errors import describe_validation_errors
from cinesense.serving.keywords import KeywordExtractor
from cinesense.serving.logs import request_id
from cinesense.serving.metrics import ServiceMetrics
from cinesense.serving.middleware import ObserveRequests
from cinesense.serving.models import (
    DirectorySource,
    LoadedModel,
    ModelManager,
    ModelSource,
    source_from_settings,
)
from cinesense.serving.schemas import (
    AnalyzedReview,
    AnalyzeResponse,
    ModelResponse,
    Prediction,
    PredictResponse,
    Problem,
    request_models,
)

log = logging.getLogger("cinesense.serving")
ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": Problem} for code in (400, 415, 422, 503)
}


def create_app(settings: Settings | None = None, source: ModelSource | None = None) -> FastAPI:
    settings = settings or get_settings()
    limits = settings.serve
    source = source or source_from_settings(settings)
    metrics = ServiceMetrics()

    def model_changed(manager: ModelManager) -> None:
        current = manager.current
        metrics.model_changed(
            current.version if current else None,
            current.quantization if current else None,
            manager.load_failures,
        )

    manager = ModelManager(source, on_change=model_changed)
    batcher = MicroBatcher(
        manager,
        limits.batch_max_size,
        limits.batch_max_wait_ms / 1000,
        limits.inference_batch_size,
        metrics.batch_size.observe,
    )
    keywords = _LazyKeywords()
    PredictRequest, AnalyzeRequest = request_models(limits)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await manager.refresh()
        batcher.start()
        background: list[asyncio.Task[Any]] = [asyncio.create_task(asyncio.to_thread(keywords.get))]
        if not isinstance(source, DirectorySource):
            background.append(asyncio.create_task(manager.poll(limits.poll_interval_s)))
        log.info("service started", extra={"ready": manager.ready, "problem": manager.problem})
        yield
        for task in background:
            task.cancel()
        await batcher.close()
        log.info("service stopped")

    app = FastAPI(
        title="cinesense",
        version=__version__,
        description="Sentiment (positive / negative) and 1-10 ratings of Korean movie reviews.",
        lifespan=lifespan,
    )
    app.state.manager, app.state.metrics, app.state.batcher = manager, metrics, batcher

    app.add_middleware(ObserveRequests, metrics=metrics)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, error: RequestValidationError) -> JSONResponse:
        status, message, problems = describe_validation_errors(error.errors())
        return _problem(status, message, problems)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, error: HTTPException) -> JSONResponse:
        return _problem(error.status_code, str(error.detail), headers=error.headers)

    @app.exception_handler(NotReadyError)
    async def not_ready(request: Request, error: NotReadyError) -> JSONResponse:
        return _problem(503, f"No model is loaded yet: {error}", headers={"Retry-After": "10"})

    @app.exception_handler(Exception)
    async def unexpected(request: Request, error: Exception) -> JSONResponse:
        log.exception("unhandled error")
        return _problem(500, "Internal error; the request id identifies it in the logs.")

    async def require_json(content_type: Annotated[str | None, Header()] = None) -> None:
        if not content_type or content_type.split(";")[0].strip().lower() != "application/json":
            raise HTTPException(
                415,
                f"Send the body as JSON with 'Content-Type: application/json' "
                f"(got {content_type or 'no content type'!r}).",
            )

    def current_model() -> LoadedModel:
        if manager.current is None:
            raise NotReadyError(manager.problem or "no model loaded")
        return manager.current

    @app.get("/health", tags=["operations"])
    async def health() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok"}

    @app.get("/ready", tags=["operations"], responses={503: {"model": dict[str, Any]}})
    async def ready() -> JSONResponse:
        """Readiness: a model is loaded (with the last refresh problem, if any)."""
        current = manager.current
        body = {
            "ready": current is not None,
            "version": current.version if current else None,
            "problem": manager.problem,
            "last_check": manager.last_check,
            "load_failures": manager.load_failures,
        }
        return JSONResponse(body, status_code=200 if current else 503)

    @app.get("/metrics", tags=["operations"], response_class=Response)
    async def prometheus() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.post(
        "/v1/predict",
        tags=["sentiment"],
        dependencies=[Depends(require_json)],
        responses=ERRORS,
    )
    async def predict(body: PredictRequest) -> PredictResponse:  # type: ignore[valid-type]
        """Label, probability and 1-10 rating for each text, in order."""
        texts = body.texts  # type: ignore[attr-defined]
        if limits.log_texts:
            log.debug("predict texts", extra={"texts": texts})
        served, model = await batcher.predict(texts)
        predictions = [_prediction(p, limits.uncertain_below) for p in served]
        for label, count in Counter(p.label for p in predictions).items():
            metrics.predictions.labels(label).inc(count)
        return PredictResponse(
            model_version=model.version, quantization=model.quantization, predictions=predictions
        )

    @app.post(
        "/v1/analyze",
        tags=["sentiment"],
        dependencies=[Depends(require_json)],
        responses=ERRORS,
    )
    async def analyze(body: AnalyzeRequest) -> AnalyzeResponse:  # type: ignore[valid-type]
        """Aggregate view of many reviews: shares, ratings, distinctive keywords, items."""
        reviews = body.reviews  # type: ignore[attr-defined]
        served, model = await batcher.predict([r.text for r in reviews])
        items = [
            AnalyzedReview(
                **_prediction(p, limits.uncertain_below).model_dump(), real_rating=r.rating
            )
            for p, r in zip(served, reviews, strict=True)
        ]
        extractor = await asyncio.to_thread(keywords.get)
        top = await asyncio.to_thread(
            extractor.top_keywords,
            [r.text for r, i in zip(reviews, items, strict=True) if i.label == "positive"],
            [r.text for r, i in zip(reviews, items, strict=True) if i.label == "negative"],
            limits.keyword_top_k,
        )
        return _aggregate(model.version, items, extractor.method, top)

    @app.get("/v1/model", tags=["model"], responses=ERRORS)
    async def model_info() -> ModelResponse:
        """The served model: version, alias, metrics, quantization, champion since."""
        model = current_model()
        details = model.details
        return ModelResponse(
            name=str(details.get("name", "")),
            version=model.version,
            reference=source.reference,
            aliases=list(details.get("aliases", [])),
            quantization=model.quantization,
            loaded_at=model.loaded_at,
            champion_since=details.get("champion_since"),
            tags=dict(details.get("tags", {})),
            metrics=dict(details.get("metrics", {})),
        )

    @app.post("/v1/model/reload", tags=["model"], responses={401: {"model": Problem}})
    async def reload(x_api_key: Annotated[str | None, Header()] = None) -> dict[str, Any]:
        """Admin: check the registry now and load the live version (X-API-Key)."""
        _check_admin(settings, x_api_key)
        swapped = await manager.refresh(force=True)
        current = manager.current
        return {
            "swapped": swapped,
            "version": current.version if current else None,
            "problem": manager.problem,
        }

    return app


class _LazyKeywords:
    """Starts the morphology analyser (a JVM: seconds) once, off the request path."""

    def __init__(self) -> None:
        self._extractor: KeywordExtractor | None = None
        self._lock = threading.Lock()

    def get(self) -> KeywordExtractor:
        with self._lock:
            if self._extractor is None:
                self._extractor = KeywordExtractor()
            return self._extractor


def _problem(
    status: int, message: str, problems: list[str] | None = None, headers: Any = None
) -> JSONResponse:
    body = Problem(error=message, problems=problems or [], request_id=request_id.get())
    return JSONResponse(body.model_dump(), status_code=status, headers=headers)


def _check_admin(settings: Settings, offered: str | None) -> None:
    key = settings.serve.admin_api_key
    if key is None:
        raise HTTPException(
            403, "Admin endpoints are disabled: set CINESENSE_SERVE__ADMIN_API_KEY to enable them."
        )
    if offered is None or not secrets.compare_digest(offered, key.get_secret_value()):
        raise HTTPException(401, "Missing or wrong X-API-Key header.")


def _prediction(served: ServedPrediction, uncertain_below: float) -> Prediction:
    label = served.label if served.confidence >= uncertain_below else "uncertain"
    return Prediction(
        label=label,
        probability_positive=served.probability_positive,
        confidence=served.confidence,
        rating=served.rating,
        truncated=served.truncated,
    )


def _aggregate(
    version: str, items: list[AnalyzedReview], method: str, keywords: dict[str, Any]
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
