"""``cinesense stack run SERVICE``: render a service's configuration from the settings and
become the real server (``os.execvpe``), so supervisord (here) and the container runtime
(compose) see the server itself: its exit code, its signals, its output.

Nothing here assumes the local machine: addresses come from ``CINESENSE_STACK__HOSTS`` and
``BIND_HOST``, paths from the settings, programs from the running virtualenv or ``PATH``.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import SecretStr

from cinesense.config import Settings
from cinesense.errors import CinesenseError
from cinesense.stack import layout
from cinesense.stack.layout import (
    AIRFLOW_APISERVER,
    AIRFLOW_DAG_PROCESSOR,
    AIRFLOW_INIT,
    AIRFLOW_SCHEDULER,
    AIRFLOW_TRIGGERER,
    API,
    DEMO_SITE,
    MLFLOW,
    MODEL_INIT,
    NGINX,
    OBJECTSTORE,
    OBJECTSTORE_INIT,
    UI,
)

AIRFLOW_PREFIX = "/airflow"  # where nginx serves Airflow (nginx/templates)


class StackError(CinesenseError):
    """The platform cannot start or be controlled; the message says what to do."""


@dataclass
class Launch:
    """What a service runs: the program's arguments and the variables added to its
    environment (on top of the inherited one)."""

    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)


def secret(value: SecretStr | None, name: str) -> str:
    if value is None or not value.get_secret_value():
        raise StackError(
            f"The secret {name} is not set. `make up` generates it into the stack's "
            "secrets.env; containers get it from the environment (see .env.example)."
        )
    return value.get_secret_value()


def program(name: str, *folders: Path | None) -> str:
    """A program of the running virtualenv, else of ``folders``, else from PATH."""
    for folder in (Path(sys.executable).parent, *folders):
        if folder is not None and (folder / name).exists():
            return str(folder / name)
    found = shutil.which(name)
    if found is None:
        raise StackError(
            f"`{name}` was not found in {Path(sys.executable).parent} nor on PATH; install it."
        )
    return found


def write_private(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600, exist_ok=True)
    path.chmod(0o600)
    path.write_text(text)
    return path


# --- what every service shares ------------------------------------------------------------


def platform_settings(settings: Settings) -> Settings:
    """The settings as the platform's services use them: storage in the object store,
    the registry on the MLflow server (explicit settings win)."""
    storage = settings.storage.model_copy(
        update={
            "backend": "s3",
            "endpoint_url": settings.storage.endpoint_url or layout.objectstore_url(settings),
        }
    )
    mlflow = settings.mlflow.model_copy(
        update={"tracking_uri": settings.mlflow.tracking_uri or layout.mlflow_url(settings)}
    )
    return settings.model_copy(update={"storage": storage, "mlflow": mlflow})


def platform_environment(settings: Settings) -> dict[str, str]:
    """Variables every service gets: where the platform's parts are, and the secrets the
    clients need (MLflow's basic-auth login, the storage keys, the API's admin key)."""
    platform = platform_settings(settings)
    stack, storage = settings.stack, platform.storage
    env = {
        "CINESENSE_HOME": str(layout.home_dir(settings)),
        "CINESENSE_STORAGE__BACKEND": "s3",
        "CINESENSE_STORAGE__ENDPOINT_URL": str(storage.endpoint_url),
        "CINESENSE_STORAGE__BUCKET": storage.bucket,
        "CINESENSE_STORAGE__ACCESS_KEY_ID": secret(
            storage.access_key_id, "CINESENSE_STORAGE__ACCESS_KEY_ID"
        ),
        "CINESENSE_STORAGE__SECRET_ACCESS_KEY": secret(
            storage.secret_access_key, "CINESENSE_STORAGE__SECRET_ACCESS_KEY"
        ),
        "CINESENSE_MLFLOW__TRACKING_URI": str(platform.mlflow.tracking_uri),
        "MLFLOW_TRACKING_USERNAME": stack.mlflow_admin_username,
        "MLFLOW_TRACKING_PASSWORD": secret(
            stack.mlflow_admin_password, "CINESENSE_STACK__MLFLOW_ADMIN_PASSWORD"
        ),
        "CINESENSE_SERVE__ADMIN_API_KEY": secret(
            settings.serve.admin_api_key, "CINESENSE_SERVE__ADMIN_API_KEY"
        ),
    }
    if stack.demo:  # demo data: every crawl reads the local fake site, never a real one
        site = layout.demo_site_url(settings)
        env["CINESENSE_CRAWL__MEGABOX__BASE_URL"] = site
        env["CINESENSE_CRAWL__CGV__BASE_URL"] = site
        env["CINESENSE_CRAWL__RATE_LIMIT_PER_S"] = "50"
    return env


def export_mlflow_login(settings: Settings) -> None:
    """For this process's MLflow client: the basic-auth login of the MLflow server."""
    password = settings.stack.mlflow_admin_password
    if password is not None:
        os.environ["MLFLOW_TRACKING_USERNAME"] = settings.stack.mlflow_admin_username
        os.environ["MLFLOW_TRACKING_PASSWORD"] = password.get_secret_value()


def s3_environment(settings: Settings) -> dict[str, str]:
    """For programs that use boto3 directly (MLflow's artifact proxy)."""
    platform = platform_settings(settings)
    env = platform_environment(settings)
    return {
        "MLFLOW_S3_ENDPOINT_URL": str(platform.storage.endpoint_url),
        "AWS_ACCESS_KEY_ID": env["CINESENSE_STORAGE__ACCESS_KEY_ID"],
        "AWS_SECRET_ACCESS_KEY": env["CINESENSE_STORAGE__SECRET_ACCESS_KEY"],
        "AWS_DEFAULT_REGION": platform.storage.region,
        # boto3 >= 1.36 checksums: sent only where S3 requires them.
        "AWS_REQUEST_CHECKSUM_CALCULATION": "when_required",
        "AWS_RESPONSE_CHECKSUM_VALIDATION": "when_required",
    }


# --- object store (SeaweedFS) -------------------------------------------------------------


def objectstore(settings: Settings) -> Launch:
    stack = settings.stack
    env = platform_environment(settings)
    identities = {
        "identities": [
            {
                "name": "cinesense",
                "credentials": [
                    {
                        "accessKey": env["CINESENSE_STORAGE__ACCESS_KEY_ID"],
                        "secretKey": env["CINESENSE_STORAGE__SECRET_ACCESS_KEY"],
                    }
                ],
                "actions": ["Admin", "Read", "List", "Tagging", "Write"],
            }
        ]
    }
    config = write_private(layout.config_dir(settings) / "s3.json", json.dumps(identities))
    data = layout.data_dir(settings, OBJECTSTORE)
    data.mkdir(parents=True, exist_ok=True)
    base, s3 = stack.objectstore_internal_port, stack.objectstore_port
    return Launch(
        [
            program("weed"),
            "server",
            f"-dir={data}",
            f"-ip={layout.host_of(settings, OBJECTSTORE)}",
            f"-ip.bind={stack.bind_host}",
            f"-master.port={base}",
            f"-master.port.grpc={base + 10000}",
            "-master.telemetry=false",
            "-master.volumeSizeLimitMB=64",
            "-volume.max=0",
            f"-volume.port={base + 1}",
            f"-volume.port.grpc={base + 10001}",
            "-filer",
            f"-filer.port={base + 2}",
            f"-filer.port.grpc={base + 10002}",
            "-s3",
            f"-s3.port={s3}",
            f"-s3.port.grpc={s3 + 10000}",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            f"-s3.config={config}",
        ]
    )


def create_buckets(settings: Settings, timeout_s: float = 60) -> list[str]:
    """Create the review store's and MLflow's buckets when missing (idempotent)."""
    from cinesense.storage import S3Store

    platform = platform_settings(settings)
    buckets = [platform.storage.bucket, settings.stack.artifact_bucket]
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            store = S3Store(platform.storage)
            existing = {b["Name"] for b in store.client.list_buckets().get("Buckets", [])}
            for bucket in buckets:
                if bucket not in existing:
                    store.client.create_bucket(Bucket=bucket)
            return buckets
        except Exception as error:  # botocore raises many kinds; the store may be starting
            if time.monotonic() > deadline:
                raise StackError(
                    f"Could not create the buckets {buckets} at {platform.storage.endpoint_url}"
                    f": {error}"
                ) from error
            time.sleep(1)


# --- MLflow ---------------------------------------------------------------------------------


def allowed_hosts(settings: Settings, *services: str) -> str:
    names = {"localhost", "127.0.0.1", *(layout.host_of(settings, s) for s in services)}
    return ",".join(sorted(names | {f"{name}:*" for name in names}))


def mlflow(settings: Settings) -> Launch:
    stack = settings.stack
    data = layout.data_dir(settings, MLFLOW)
    data.mkdir(parents=True, exist_ok=True)
    database = stack.mlflow_database_uri  # runs and registry; logins stay in their own file
    runs_db = database.get_secret_value() if database else f"sqlite:///{data / 'mlflow.db'}"
    auth = write_private(
        layout.config_dir(settings) / "mlflow-auth.ini",
        "[mlflow]\n"
        "default_permission = NO_PERMISSIONS\n"
        f"database_uri = sqlite:///{data / 'auth.db'}\n"
        f"admin_username = {stack.mlflow_admin_username}\n"
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n",
    )
    env = {
        **s3_environment(settings),
        "MLFLOW_AUTH_CONFIG_PATH": str(auth),
        "MLFLOW_AUTH_ADMIN_USERNAME": stack.mlflow_admin_username,
        "MLFLOW_AUTH_ADMIN_PASSWORD": secret(
            stack.mlflow_admin_password, "CINESENSE_STACK__MLFLOW_ADMIN_PASSWORD"
        ),
        "MLFLOW_FLASK_SERVER_SECRET_KEY": secret(
            stack.mlflow_secret_key, "CINESENSE_STACK__MLFLOW_SECRET_KEY"
        ),
        # MLflow 3's job runner (GenAI judges, trace roll-ups: unused here) forks eight
        # worker processes, 1.8 GB resident when idle (measured 2026-12-02).
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
    }
    argv = [
        program("mlflow"),
        "server",
        "--app-name",
        "basic-auth",
        "--backend-store-uri",
        runs_db,
        "--artifacts-destination",
        f"s3://{stack.artifact_bucket}/artifacts",
        "--host",
        stack.bind_host,
        "--port",
        str(stack.mlflow_port),
        "--workers",
        "1",
        "--allowed-hosts",
        allowed_hosts(settings, MLFLOW, NGINX),
    ]
    if stack.mlflow_prefix:
        argv += ["--static-prefix", stack.mlflow_prefix]
    return Launch(argv, env)


# --- Airflow --------------------------------------------------------------------------------


def airflow_environment(settings: Settings) -> dict[str, str]:
    """Airflow's configuration (AIRFLOW__*), its connections, and what its tasks need."""
    stack = settings.stack
    if stack.airflow_dags_folder is None:
        raise StackError(
            "No DAGs folder: set CINESENSE_STACK__AIRFLOW_DAGS_FOLDER to the project's "
            "airflow/dags."
        )
    home = layout.data_dir(settings, "airflow")
    home.mkdir(parents=True, exist_ok=True)
    database = (
        stack.airflow_database_uri.get_secret_value()
        if stack.airflow_database_uri
        else f"sqlite:///{airflow_sqlite_file(settings)}"
    )
    passwords = write_private(
        layout.config_dir(settings) / "airflow-passwords.json",
        json.dumps(
            {
                stack.airflow_admin_username: secret(
                    stack.airflow_admin_password, "CINESENSE_STACK__AIRFLOW_ADMIN_PASSWORD"
                )
            }
        ),
    )
    platform = platform_environment(settings)
    storage_connection = {
        "conn_type": "generic",
        "login": platform["CINESENSE_STORAGE__ACCESS_KEY_ID"],
        "password": platform["CINESENSE_STORAGE__SECRET_ACCESS_KEY"],
        "extra": {
            "endpoint_url": platform["CINESENSE_STORAGE__ENDPOINT_URL"],
            "bucket": platform["CINESENSE_STORAGE__BUCKET"],
        },
    }
    api = layout.airflow_url(settings)
    return {
        **platform,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(stack.airflow_dags_folder.resolve()),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__PARALLELISM": "2",  # 2 cores: two task processes at a time
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": database,
        "AIRFLOW__CORE__AUTH_MANAGER": (
            "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
        ),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{stack.airflow_admin_username}:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
        "AIRFLOW__API_AUTH__JWT_SECRET": secret(
            stack.airflow_jwt_secret, "CINESENSE_STACK__AIRFLOW_JWT_SECRET"
        ),
        "AIRFLOW__API__SECRET_KEY": secret(
            stack.airflow_secret_key, "CINESENSE_STACK__AIRFLOW_SECRET_KEY"
        ),
        "AIRFLOW__API__BASE_URL": f"{layout.frontdoor_url(settings)}{AIRFLOW_PREFIX}/",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{api}{AIRFLOW_PREFIX}/execution/",
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(stack.airflow_log_port),
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(stack.airflow_trigger_log_port),
        "AIRFLOW_CONN_CINESENSE_STORAGE": json.dumps(storage_connection),
    }


def airflow_sqlite_file(settings: Settings) -> Path:
    """Airflow's metadata database when no CINESENSE_STACK__AIRFLOW_DATABASE_URI is set."""
    return layout.data_dir(settings, "airflow") / "airflow.db"


def airflow(command: list[str]) -> Callable[[Settings], Launch]:
    def launch(settings: Settings) -> Launch:
        airflow = program("airflow", settings.stack.airflow_bin)
        return Launch([airflow, *command], airflow_environment(settings))

    return launch


def airflow_apiserver(settings: Settings) -> Launch:
    stack = settings.stack
    command = ["api-server", "--host", stack.bind_host, "--port", str(stack.airflow_port)]
    airflow = program("airflow", stack.airflow_bin)
    return Launch([airflow, *command, "--workers", "1"], airflow_environment(settings))


# --- the API, the UI, the front door -------------------------------------------------------


def api(settings: Settings) -> Launch:
    stack = settings.stack
    return Launch(
        [
            sys.executable,
            "-m",
            "cinesense",
            "serve",
            "--host",
            stack.bind_host,
            "--port",
            str(stack.api_port),
        ],
        {
            **platform_environment(settings),
            "CINESENSE_AIRFLOW__BASE_URL": layout.airflow_url(settings) + AIRFLOW_PREFIX,
            "CINESENSE_AIRFLOW__USERNAME": stack.airflow_admin_username,
            "CINESENSE_AIRFLOW__PASSWORD": secret(
                stack.airflow_admin_password, "CINESENSE_STACK__AIRFLOW_ADMIN_PASSWORD"
            ),
        },
    )


def ui(settings: Settings) -> Launch:
    stack = settings.stack
    if stack.ui_app is None or not stack.ui_app.exists():
        raise StackError(
            f"The Streamlit app {stack.ui_app} is missing: set CINESENSE_STACK__UI_APP to the "
            "project's streamlit/app.py."
        )
    return Launch(
        [
            program("streamlit"),
            "run",
            str(stack.ui_app),
            "--server.address",
            stack.bind_host,
            "--server.port",
            str(stack.ui_port),
            "--server.headless",
            "true",
            "--browser.gatherUsageStats",
            "false",
            # the same upload limit as nginx's client_max_body_size; no developer toolbar
            "--server.maxUploadSize",
            str(settings.ui.upload_max_mb),
            "--client.toolbarMode",
            "viewer",
        ],
        {
            "CINESENSE_HOME": str(layout.home_dir(settings)),
            "CINESENSE_UI__API_URL": layout.api_url(settings),
        },
    )


def nginx(settings: Settings) -> Launch:
    """nginx as the front door: Helper UI's template (cinesense.frontdoor), its upstreams
    and port from the stack settings, every writable path under the stack home."""
    from cinesense.frontdoor import standalone_conf

    stack = settings.stack
    upstreams = {
        "ui_upstream": (UI, stack.ui_port),
        "api_upstream": (API, stack.api_port),
        "mlflow_upstream": (MLFLOW, stack.mlflow_port),
        "airflow_upstream": (AIRFLOW_APISERVER, stack.airflow_port),
    }
    options = settings.nginx.model_copy(
        update={
            "listen_port": stack.frontdoor_port,
            **{
                key: f"{layout.host_of(settings, s)}:{port}" for key, (s, port) in upstreams.items()
            },
        }
    )
    runtime = layout.data_dir(settings, NGINX)
    conf = standalone_conf(settings.model_copy(update={"nginx": options}), runtime)
    path = layout.config_dir(settings) / "nginx.conf"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(conf)
    return Launch([program("nginx"), "-p", str(runtime), "-c", str(path), "-g", "daemon off;"])


def demo_site(settings: Settings) -> Launch:
    stack = settings.stack
    return Launch(
        [
            sys.executable,
            "-m",
            "cinesense.crawl.fakesite",
            "--host",
            stack.bind_host,
            "--port",
            str(stack.demo_site_port),
        ]
    )


LAUNCHERS: dict[str, Callable[[Settings], Launch]] = {
    OBJECTSTORE: objectstore,
    MLFLOW: mlflow,
    AIRFLOW_INIT: airflow(["db", "migrate"]),
    AIRFLOW_APISERVER: airflow_apiserver,
    AIRFLOW_SCHEDULER: airflow(["scheduler"]),
    AIRFLOW_DAG_PROCESSOR: airflow(["dag-processor"]),
    AIRFLOW_TRIGGERER: airflow(["triggerer"]),
    API: api,
    UI: ui,
    NGINX: nginx,
    DEMO_SITE: demo_site,
}
RUNNABLE = (*LAUNCHERS, OBJECTSTORE_INIT, MODEL_INIT)


def launch(settings: Settings, service: str) -> Launch:
    if service not in LAUNCHERS:
        raise StackError(f"Unknown service {service!r}; one of: {', '.join(RUNNABLE)}.")
    return LAUNCHERS[service](settings)


def run(settings: Settings, service: str) -> None:
    """Become ``service`` (does not return), or run a one-shot step and return. Outside
    development a service whose secrets are missing or placeholders does not start."""
    settings.require_secrets(service)
    if service == OBJECTSTORE_INIT:
        create_buckets(settings, settings.stack.startup_timeout_s)
        return
    if service == MODEL_INIT:
        from cinesense.stack.champion import first_champion

        export_mlflow_login(settings)
        sys.stdout.write(first_champion(settings) + "\n")  # its last line: what happened
        return
    plan = launch(settings, service)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execvpe(plan.argv[0], plan.argv, {**os.environ, **plan.env})
