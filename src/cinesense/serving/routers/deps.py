"""FastAPI dependencies: what ``create_app`` put on ``app.state``, and the admin check."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import Depends, Header, Request
from starlette.exceptions import HTTPException

from cinesense.config import Settings
from cinesense.serving.batching import MicroBatcher, NotReadyError
from cinesense.serving.metrics import ServiceMetrics
from cinesense.serving.models import LoadedModel, ModelManager


def app_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def manager(request: Request) -> ModelManager:
    current: ModelManager = request.app.state.manager
    return current


def batcher(request: Request) -> MicroBatcher:
    current: MicroBatcher = request.app.state.batcher
    return current


def metrics(request: Request) -> ServiceMetrics:
    current: ServiceMetrics = request.app.state.metrics
    return current


SettingsDep = Annotated[Settings, Depends(app_settings)]
ManagerDep = Annotated[ModelManager, Depends(manager)]
BatcherDep = Annotated[MicroBatcher, Depends(batcher)]
MetricsDep = Annotated[ServiceMetrics, Depends(metrics)]


def current_model(manager: ManagerDep) -> LoadedModel:
    if manager.current is None:
        raise NotReadyError(manager.problem or "no model loaded")
    return manager.current


async def require_json(content_type: Annotated[str | None, Header()] = None) -> None:
    if not content_type or content_type.split(";")[0].strip().lower() != "application/json":
        raise HTTPException(
            415,
            f"Send the body as JSON with 'Content-Type: application/json' "
            f"(got {content_type or 'no content type'!r}).",
        )


def check_admin(settings: Settings, offered: str | None) -> None:
    """Admin endpoints need ``X-API-Key`` equal to ``CINESENSE_SERVE__ADMIN_API_KEY``."""
    key = settings.serve.admin_api_key
    if key is None:
        raise HTTPException(
            403, "Admin endpoints are disabled: set CINESENSE_SERVE__ADMIN_API_KEY to enable them."
        )
    if offered is None or not secrets.compare_digest(offered, key.get_secret_value()):
        raise HTTPException(401, "Missing or wrong X-API-Key header.")
