"""What the cinesense DAGs share: assets, connections, settings, notifications.

Kept light on purpose: the scheduler and the DAG processor import the DAG files often,
so nothing here imports cinesense (torch, pandas, MLflow…) at module level; the
functions do, inside the task that calls them. The one exception is parse-time
:func:`option_params`, which reads the settings fields (``cinesense.options``: pydantic
only) so the Params and the settings cannot drift apart.

Secrets come from Airflow connections or the workers' environment, never from a DAG file:

* ``cinesense_storage`` (optional): object-storage credentials — login = access key id,
  password = secret key, extra ``{"endpoint_url": …, "bucket": …}``. Without it the
  ``CINESENSE_STORAGE__*`` environment applies.
* ``cinesense_slack`` (optional): a Slack incoming webhook, the whole URL in the password
  field. Without it notifications go to the task log.

Airflow masks connection passwords in task logs; cinesense never logs them either.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from airflow.sdk import Asset, conf

if TYPE_CHECKING:
    from pathlib import Path

    from cinesense.config import Settings

log = logging.getLogger("cinesense.airflow")

# The review store and the scores beside it, as Airflow assets (data-aware scheduling).
REVIEWS = Asset(name="cinesense_reviews", uri="cinesense://store/reviews", group="cinesense")
SCORES = Asset(name="cinesense_scores", uri="cinesense://store/scores", group="cinesense")

STORAGE_CONNECTION = "cinesense_storage"
SLACK_CONNECTION = "cinesense_slack"
START_DATE = datetime(2026, 1, 1)
TIMEZONE = "Asia/Seoul"  # the sites' own time: daily crawls after their midnight

# Retries wait Airflow's default_task_retry_delay (5 minutes unless configured), doubling
# each time up to an hour. Set explicitly: dag.test() does not apply the configured default
# to mapped tasks.
RETRY = {
    "retry_delay": timedelta(seconds=conf.getint("core", "default_task_retry_delay", fallback=300)),
    "retry_exponential_backoff": 2.0,
    "max_retry_delay": timedelta(hours=1),
}


def optional_connection(conn_id: str) -> Any | None:
    """The Airflow connection ``conn_id``, or ``None`` when it is not defined."""
    from airflow.sdk import Connection
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        return Connection.get(conn_id)
    except AirflowNotFoundException:
        return None


def cinesense_settings(torch_threads: bool = False, **groups: dict[str, Any] | None) -> Settings:
    """The package settings from the environment, the storage connection when defined, and
    per-run overrides by group (``train={"epochs": 2}``; ``None`` values are ignored)."""
    from cinesense.config import Settings
    from cinesense.pipelines.common import with_overrides, with_storage_credentials

    settings = Settings()
    storage = optional_connection(STORAGE_CONNECTION)
    if storage is not None:
        extra = storage.extra_dejson
        settings = with_storage_credentials(
            settings,
            storage.login,
            storage.password,
            extra.get("endpoint_url"),
            extra.get("bucket"),
        )
    for group, overrides in groups.items():
        settings = with_overrides(settings, group, **(overrides or {}))
    if torch_threads:
        from cinesense.model.loop import set_threads

        set_threads(settings.num_threads)
    return settings


def option_params(group: str) -> dict[str, Any]:
    """The DAG Params of a settings group's per-run options (``train``, ``pretrain``),
    generated from the settings fields (:mod:`cinesense.options`: light, pydantic only)."""
    from airflow.sdk import Param

    from cinesense.options import param_specs

    return {name: Param(spec.pop("default"), **spec) for name, spec in param_specs(group).items()}


def option_values(group: str, params: dict[str, Any]) -> dict[str, Any]:
    """A run's values of a group's per-run options (``None``: keep the setting)."""
    from cinesense.options import OPTIONS

    return {key: params[key] for key in OPTIONS[group]}


def run_dir(settings: Settings, dag_id: str, run_id: str) -> Path:
    from cinesense.pipelines.common import run_directory

    return run_directory(settings, dag_id, run_id)


def notify(text: str) -> str:
    """Send ``text`` to Slack when the connection exists, else to the task log; says where."""
    connection = optional_connection(SLACK_CONNECTION)
    if connection is None or not (connection.password or connection.host):
        log.info("notification (no %s connection):\n%s", SLACK_CONNECTION, text)
        return "log"
    from cinesense.notify import post_to_slack

    post_to_slack(connection.password or connection.host, text)
    log.info("notification sent to Slack:\n%s", text)
    return "slack"


def notify_failure(context: Any) -> None:
    """Task failure callback: say which run and task failed, and the error's first line."""
    ti = context["ti"]
    error = context.get("exception")
    first_line = str(error).splitlines()[0][:300] if error else "unknown error"
    text = (
        f"cinesense: {ti.dag_id} run {context['run_id']} failed at task {ti.task_id}\n"
        f"• {type(error).__name__ if error else 'Error'}: {first_line}"
    )
    try:
        notify(text)
    except Exception as problem:  # a failing notification must not hide the real failure
        log.warning("could not send the failure notification: %s", problem)
