"""What every stage shares: per-run settings overrides, credentials from an orchestrator,
the run's working directory."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cinesense.config import Settings
from cinesense.files import safe_name


def with_overrides(settings: Settings, group: str, **overrides: Any) -> Settings:
    """``settings`` with the options of one group (``train``, ``pretrain``…) that are given
    (not ``None``) replaced, validated like the environment's values."""
    current = getattr(settings, group)
    unknown = set(overrides) - set(type(current).model_fields)
    if unknown:
        raise ValueError(f"not a {group} setting: {', '.join(sorted(unknown))}")
    chosen = {key: value for key, value in overrides.items() if value is not None}
    if not chosen:
        return settings
    replaced = type(current).model_validate({**current.model_dump(), **chosen})
    return settings.model_copy(update={group: replaced})


def with_storage_credentials(
    settings: Settings,
    access_key_id: str | None = None,
    secret_access_key: str | None = None,
    endpoint_url: str | None = None,
    bucket: str | None = None,
) -> Settings:
    """``settings`` with object-storage credentials from elsewhere (an Airflow connection);
    selects the S3 backend."""
    from pydantic import SecretStr

    update: dict[str, Any] = {"backend": "s3"}
    if access_key_id:
        update["access_key_id"] = SecretStr(access_key_id)
    if secret_access_key:
        update["secret_access_key"] = SecretStr(secret_access_key)
    if endpoint_url:
        update["endpoint_url"] = endpoint_url
    if bucket:
        update["bucket"] = bucket
    return settings.model_copy(update={"storage": settings.storage.model_copy(update=update)})


def run_directory(settings: Settings, pipeline: str, run_id: str) -> Path:
    """Where one orchestrated run keeps its dataset, model and bundle (under the home)."""
    return settings.home / "runs" / pipeline / safe_name(run_id)
