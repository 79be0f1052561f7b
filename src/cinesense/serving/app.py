"""The inference service: FastAPI over the micro-batcher and the live model.

``create_app()`` builds it from settings; ``fastapi/main.py`` and ``cinesense serve`` run it
under uvicorn. It only assembles: the live model, the batcher and the metrics go on
``app.state``; the endpoints live in :mod:`cinesense.serving.routers`, one router per
concern.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from cinesense import __version__
from cinesense.config import Settings, get_settings
from cinesense.serving.batching import MicroBatcher
from cinesense.serving.metrics import ServiceMetrics
from cinesense.serving.middleware import ObserveRequests
from cinesense.serving.models import (
    DirectorySource,
    ModelManager,
    ModelSource,
    source_from_settings,
)
from cinesense.serving.problems import install_error_handlers
from cinesense.serving.routers import jobs, model, operations, predictions, read

log = logging.getLogger("cinesense.serving")


def create_app(settings: Settings | None = None, source: ModelSource | None = None) -> FastAPI:
    settings = settings or get_settings()
    settings.require_secrets("api")
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
    keywords = predictions.LazyKeywords()

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
    app.state.settings, app.state.manager, app.state.batcher = settings, manager, batcher
    app.state.metrics, app.state.keywords = metrics, keywords
    app.add_middleware(ObserveRequests, metrics=metrics)
    install_error_handlers(app)

    app.include_router(operations.router)
    app.include_router(predictions.build_router(limits))
    app.include_router(model.router)
    app.include_router(read.router)
    app.include_router(jobs.router)
    return app
