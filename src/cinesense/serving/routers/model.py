"""``/v1/model``: the served model; ``/v1/model/reload``: load the live version now (admin)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header

from cinesense.serving.models import LoadedModel
from cinesense.serving.problems import ERRORS
from cinesense.serving.routers.deps import ManagerDep, SettingsDep, check_admin, current_model
from cinesense.serving.schemas import ModelResponse, Problem

router = APIRouter(tags=["model"])


@router.get("/v1/model", responses=ERRORS)
async def model_info(
    model: Annotated[LoadedModel, Depends(current_model)], manager: ManagerDep
) -> ModelResponse:
    """The served model: version, alias, metrics, quantization, champion since."""
    details = model.details
    return ModelResponse(
        name=str(details.get("name", "")),
        version=model.version,
        reference=manager.source.reference,
        aliases=list(details.get("aliases", [])),
        quantization=model.quantization,
        loaded_at=model.loaded_at,
        champion_since=details.get("champion_since"),
        tags=dict(details.get("tags", {})),
        metrics=dict(details.get("metrics", {})),
    )


@router.post("/v1/model/reload", responses={401: {"model": Problem}})
async def reload(
    settings: SettingsDep,
    manager: ManagerDep,
    x_api_key: Annotated[str | None, Header()] = None,
) -> dict[str, Any]:
    """Admin: check the registry now and load the live version (X-API-Key)."""
    check_admin(settings, x_api_key)
    swapped = await manager.refresh(force=True)
    current = manager.current
    return {
        "swapped": swapped,
        "version": current.version if current else None,
        "problem": manager.problem,
    }
