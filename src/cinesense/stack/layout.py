"""Names, paths, ports and URLs of the platform's services, all from the settings."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cinesense.config import Settings

OBJECTSTORE, MLFLOW, API, UI, NGINX = "objectstore", "mlflow", "api", "ui", "nginx"
AIRFLOW_APISERVER = "airflow-apiserver"
AIRFLOW_SCHEDULER = "airflow-scheduler"
AIRFLOW_DAG_PROCESSOR = "airflow-dag-processor"
AIRFLOW_TRIGGERER = "airflow-triggerer"
AIRFLOW_SERVICES = (AIRFLOW_APISERVER, AIRFLOW_SCHEDULER, AIRFLOW_DAG_PROCESSOR, AIRFLOW_TRIGGERER)
DEMO_SITE = "demo-site"
# One-shot set-up steps (compose runs them as their own services); model-init registers
# the shipped bundle as the first champion when the registry has none.
OBJECTSTORE_INIT, AIRFLOW_INIT, MODEL_INIT = "objectstore-init", "airflow-init", "model-init"

# Dependency order: a group needs only the groups before it. `make up` starts what does
# not depend on another service at once (cinesense.stack.control.up).
START_ORDER: tuple[tuple[str, ...], ...] = (
    (OBJECTSTORE,),
    (MLFLOW,),
    (*AIRFLOW_SERVICES, API, UI),
    (NGINX,),
)
SERVICES = tuple(name for group in START_ORDER for name in group)


def stack_home(settings: Settings) -> Path:
    return (settings.stack.home or settings.home / "stack").resolve()


def home_dir(settings: Settings) -> Path:
    return settings.home.resolve()


def logs_dir(settings: Settings) -> Path:
    return stack_home(settings) / "logs"


def log_file(settings: Settings, service: str) -> Path:
    return logs_dir(settings) / f"{service}.log"


def config_dir(settings: Settings) -> Path:
    return stack_home(settings) / "config"


def data_dir(settings: Settings, service: str) -> Path:
    return stack_home(settings) / "data" / service


def secrets_file(settings: Settings) -> Path:
    return stack_home(settings) / "secrets.env"


def host_of(settings: Settings, service: str) -> str:
    """Where the other services reach ``service``."""
    return settings.stack.hosts.get(service, "127.0.0.1")


def url_of(settings: Settings, service: str, port: int, path: str = "") -> str:
    return f"http://{host_of(settings, service)}:{port}{path}"


def objectstore_url(settings: Settings) -> str:
    return url_of(settings, OBJECTSTORE, settings.stack.objectstore_port)


def mlflow_url(settings: Settings) -> str:
    return url_of(settings, MLFLOW, settings.stack.mlflow_port, settings.stack.mlflow_prefix)


def airflow_url(settings: Settings) -> str:
    return url_of(settings, AIRFLOW_APISERVER, settings.stack.airflow_port)


def api_url(settings: Settings) -> str:
    return url_of(settings, API, settings.stack.api_port)


def ui_url(settings: Settings) -> str:
    return url_of(settings, UI, settings.stack.ui_port)


def frontdoor_url(settings: Settings) -> str:
    """The front door as browsers reach it."""
    public = settings.stack.public_url
    return public.rstrip("/") if public else url_of(settings, NGINX, settings.stack.frontdoor_port)


def demo_site_url(settings: Settings) -> str:
    return url_of(settings, DEMO_SITE, settings.stack.demo_site_port)


@dataclass(frozen=True)
class Port:
    number: int
    setting: str  # the environment variable that changes it
    service: str


def ports(settings: Settings) -> list[Port]:
    """Every port the local platform listens on, with the setting that moves it."""
    stack = settings.stack
    internal = stack.objectstore_internal_port
    found = [
        Port(stack.objectstore_port, "CINESENSE_STACK__OBJECTSTORE_PORT", OBJECTSTORE),
        Port(stack.objectstore_port + 10000, "CINESENSE_STACK__OBJECTSTORE_PORT", OBJECTSTORE),
        *(
            Port(internal + offset, "CINESENSE_STACK__OBJECTSTORE_INTERNAL_PORT", OBJECTSTORE)
            for offset in (0, 1, 2, 10000, 10001, 10002)
        ),
        Port(stack.mlflow_port, "CINESENSE_STACK__MLFLOW_PORT", MLFLOW),
        Port(stack.airflow_port, "CINESENSE_STACK__AIRFLOW_PORT", AIRFLOW_APISERVER),
        Port(stack.airflow_log_port, "CINESENSE_STACK__AIRFLOW_LOG_PORT", AIRFLOW_SCHEDULER),
        Port(
            stack.airflow_trigger_log_port,
            "CINESENSE_STACK__AIRFLOW_TRIGGER_LOG_PORT",
            AIRFLOW_TRIGGERER,
        ),
        Port(stack.api_port, "CINESENSE_STACK__API_PORT", API),
        Port(stack.ui_port, "CINESENSE_STACK__UI_PORT", UI),
        Port(stack.frontdoor_port, "CINESENSE_STACK__FRONTDOOR_PORT", NGINX),
    ]
    if stack.demo:
        found.append(Port(stack.demo_site_port, "CINESENSE_STACK__DEMO_SITE_PORT", DEMO_SITE))
    return found
