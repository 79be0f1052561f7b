"""``/health``, ``/ready``, ``/metrics``: what orchestrators and Prometheus ask."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from cinesense.serving.routers.deps import ManagerDep, MetricsDep

router = APIRouter(tags=["operations"])


@router.get("/health")
async def health() -> dict[str, str]:
    """Liveness: the process answers."""
    return {"status": "ok"}


@router.get("/ready", responses={503: {"model": dict[str, Any]}})
async def ready(manager: ManagerDep) -> JSONResponse:
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


@router.get("/metrics", response_class=Response)
async def prometheus(metrics: MetricsDep) -> Response:
    return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)
