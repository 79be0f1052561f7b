"""The platform's secrets: generated at random on first start, kept in a private env file.

The file (``HOME/stack/secrets.env``, mode 0600, inside the git-ignored home) holds
``CINESENSE_*`` variables, so every service reads it as one more source of settings;
variables already in the environment win (containers pass their own). Nothing here logs
a value; ``cinesense stack credentials`` prints them when a person asks.
"""

from __future__ import annotations

import os
import secrets
import tempfile
from collections.abc import Callable
from pathlib import Path

from cinesense.config import Settings
from cinesense.stack.layout import secrets_file

GENERATED: dict[str, Callable[[], str]] = {
    "CINESENSE_STORAGE__ACCESS_KEY_ID": lambda: "cinesense" + secrets.token_hex(6),
    "CINESENSE_STORAGE__SECRET_ACCESS_KEY": lambda: secrets.token_urlsafe(30),
    "CINESENSE_STACK__MLFLOW_ADMIN_PASSWORD": lambda: secrets.token_urlsafe(18),
    "CINESENSE_STACK__MLFLOW_SECRET_KEY": lambda: secrets.token_hex(32),
    "CINESENSE_STACK__AIRFLOW_ADMIN_PASSWORD": lambda: secrets.token_urlsafe(18),
    "CINESENSE_STACK__AIRFLOW_JWT_SECRET": lambda: secrets.token_hex(32),
    "CINESENSE_STACK__AIRFLOW_SECRET_KEY": lambda: secrets.token_hex(32),
    "CINESENSE_SERVE__ADMIN_API_KEY": lambda: secrets.token_urlsafe(24),
}


def read_env_file(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    if not path.exists():
        return values
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, value = line.split("=", 1)
            values[key.strip()] = value.strip()
    return values


def ensure_secrets(settings: Settings) -> tuple[Path, bool]:
    """Create the secrets file, or add any secret it lacks; (its path, whether it was new).

    A secret already in the environment is not generated (an operator's own wins).
    """
    path = secrets_file(settings)
    existing = read_env_file(path)
    missing = {
        key: make()
        for key, make in GENERATED.items()
        if key not in existing and not os.environ.get(key)
    }
    if path.exists() and not missing:
        return path, False
    lines = [
        "# cinesense platform secrets, generated on first start. Keep private; never commit.",
        "# `make credentials` shows them. Delete a line to have it generated again.",
        *(f"{key}={value}" for key, value in {**existing, **missing}.items()),
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, prefix=".tmp-") as tmp:
        os.chmod(tmp.name, 0o600)
        tmp.write("\n".join(lines) + "\n")
    os.replace(tmp.name, path)
    return path, not existing


def with_secrets(settings: Settings | None = None) -> Settings:
    """The settings, plus the secrets file of the stack home as one more ``.env`` source."""
    settings = settings or Settings()
    path = secrets_file(settings)
    if not path.exists():
        return settings
    return Settings(_env_file=(".env", path))
