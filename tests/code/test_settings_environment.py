"""``Settings.environment``: outside development and test, a service refuses to start
without the secrets it needs."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr

from cinesense.config import ServeSettings, Settings, StorageSettings
from cinesense.errors import SettingsError


def test_development_and_test_start_without_secrets(tmp_path: Path) -> None:
    for environment in ("development", "test"):
        Settings(home=tmp_path, environment=environment).require_secrets("api")


def test_production_names_every_missing_or_placeholder_secret(tmp_path: Path) -> None:
    settings = Settings(
        home=tmp_path,
        environment="production",
        serve=ServeSettings(admin_api_key=SecretStr("changeme")),
        storage=StorageSettings(backend="s3", access_key_id=SecretStr("a" * 32)),
    )
    with pytest.raises(SettingsError) as error:
        settings.require_secrets("api")
    message = str(error.value)
    assert "CINESENSE_SERVE__ADMIN_API_KEY" in message
    assert "CINESENSE_STORAGE__SECRET_ACCESS_KEY" in message
    assert "CINESENSE_STORAGE__ACCESS_KEY_ID" not in message
    assert "changeme" not in message.lower().replace("cinesense", "")


def test_production_starts_with_real_secrets(tmp_path: Path) -> None:
    settings = Settings(
        home=tmp_path,
        environment="production",
        serve=ServeSettings(admin_api_key=SecretStr("9f2c" * 8)),
    )
    settings.require_secrets("api")
    assert settings.secret_problems("mlflow") == [
        "CINESENSE_STACK__MLFLOW_ADMIN_PASSWORD",
        "CINESENSE_STACK__MLFLOW_SECRET_KEY",
    ]


def test_the_service_refuses_to_start(tmp_path: Path) -> None:
    from cinesense.serving.app import create_app

    with pytest.raises(SettingsError, match="CINESENSE_SERVE__ADMIN_API_KEY"):
        create_app(Settings(home=tmp_path, environment="production"))


def test_every_stack_entrypoint_refuses_to_start_without_its_secrets(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    environment = {
        **{k: v for k, v in os.environ.items() if not k.startswith("CINESENSE_")},
        "CINESENSE_HOME": str(tmp_path),
        "CINESENSE_ENVIRONMENT": "production",
    }
    result = subprocess.run(
        [sys.executable, "-m", "cinesense", "stack", "run", "mlflow"],
        capture_output=True,
        text=True,
        env=environment,
        timeout=300,
        check=False,
    )
    assert result.returncode == 1, result.stderr
    assert "CINESENSE_STACK__MLFLOW_ADMIN_PASSWORD" in result.stderr
    assert "Traceback" not in result.stderr
