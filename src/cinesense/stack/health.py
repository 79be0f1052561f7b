"""Is a service healthy? One HTTP check per service, all from the settings."""

from __future__ import annotations

import httpx

from cinesense.config import Settings
from cinesense.stack import layout
from cinesense.stack.layout import (
    AIRFLOW_APISERVER,
    AIRFLOW_DAG_PROCESSOR,
    AIRFLOW_SCHEDULER,
    AIRFLOW_TRIGGERER,
    API,
    DEMO_SITE,
    MLFLOW,
    NGINX,
    OBJECTSTORE,
    UI,
)
from cinesense.stack.services import AIRFLOW_PREFIX

# Airflow's monitor endpoint reports its components by these keys.
AIRFLOW_COMPONENTS = {
    AIRFLOW_SCHEDULER: "scheduler",
    AIRFLOW_DAG_PROCESSOR: "dag_processor",
    AIRFLOW_TRIGGERER: "triggerer",
}


def health_url(settings: Settings, service: str) -> str:
    stack = settings.stack
    airflow_health = f"{layout.airflow_url(settings)}{AIRFLOW_PREFIX}/api/v2/monitor/health"
    return {
        OBJECTSTORE: f"{layout.objectstore_url(settings)}/healthz",
        MLFLOW: f"{layout.mlflow_url(settings)}/health",
        AIRFLOW_APISERVER: airflow_health,
        AIRFLOW_SCHEDULER: airflow_health,
        AIRFLOW_DAG_PROCESSOR: airflow_health,
        AIRFLOW_TRIGGERER: airflow_health,
        API: f"{layout.api_url(settings)}/health",
        UI: f"{layout.ui_url(settings)}/_stcore/health",
        NGINX: f"{layout.url_of(settings, NGINX, stack.frontdoor_port)}/api/health",
        DEMO_SITE: f"{layout.demo_site_url(settings)}/robots.txt",
    }[service]


def check(settings: Settings, service: str, timeout_s: float = 3.0) -> str | None:
    """``None`` when ``service`` answers as healthy, else what is wrong (one line)."""
    url = health_url(settings, service)
    try:
        response = httpx.get(url, timeout=timeout_s)
    except httpx.HTTPError as error:
        return f"{url} does not answer ({type(error).__name__})"
    if response.status_code != 200:
        return f"{url} answered {response.status_code}"
    if service in AIRFLOW_COMPONENTS:
        component = response.json().get(AIRFLOW_COMPONENTS[service]) or {}
        status = component.get("status")
        return None if status == "healthy" else f"Airflow reports {service} as {status}"
    if service == AIRFLOW_APISERVER:
        database = (response.json().get("metadatabase") or {}).get("status")
        return None if database == "healthy" else f"Airflow's metadata database is {database}"
    return None
