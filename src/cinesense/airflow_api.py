"""Airflow's REST API v2, as the service uses it: trigger a DAG run with conf, read its state.

Airflow 3 authenticates API calls with a JWT: ``POST /auth/token`` with a user name and
password returns ``access_token``, sent as ``Authorization: Bearer``. Base URL and
credentials come from ``settings.airflow`` (``CINESENSE_AIRFLOW__*``); the password is a
SecretStr and never logged. Every failure is an :class:`AirflowError` whose ``status``
says what the caller should answer (502 unreachable or broken, 503 not configured, 403
refused, 404 unknown DAG or run, 422 parameters the DAG refuses).
"""

from __future__ import annotations

import secrets
import time
from datetime import UTC, datetime
from typing import Any

import httpx

from cinesense.config import AirflowApiSettings
from cinesense.errors import CinesenseError

RUN_STATES_DONE = frozenset({"success", "failed"})
TRIGGER_ATTEMPTS = 3
TRIGGER_RETRY_DELAY_S = 2.0


class AirflowError(CinesenseError):
    def __init__(self, message: str, status: int, transient: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.transient = transient  # worth trying again: a database error or a timeout


class AirflowClient:
    """A small client for the few Airflow calls the platform makes."""

    def __init__(self, options: AirflowApiSettings, transport: httpx.BaseTransport | None = None):
        if not options.base_url:
            raise AirflowError(
                "Airflow is not configured for this service: set CINESENSE_AIRFLOW__BASE_URL "
                "(and __USERNAME / __PASSWORD).",
                503,
            )
        self.options = options
        self.base_url = options.base_url.rstrip("/")
        self._http = httpx.Client(timeout=options.timeout_s, transport=transport)
        self._token: str | None = None

    def __enter__(self) -> AirflowClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def trigger(self, dag_id: str, conf: dict[str, Any], note: str | None = None) -> dict[str, Any]:
        """Start a run of ``dag_id`` now; returns the run (``dag_run_id``, ``state``, ...).

        On its SQLite metadata database Airflow sometimes cannot take the write lock while
        its tasks write (a 500 "Database error", or no answer in time; seen on two busy
        cores). The run's id is chosen here, so trying again is safe: a 409 then means an
        earlier try created it."""
        run_id = f"manual__{datetime.now(UTC).isoformat()}_{secrets.token_hex(3)}"
        body: dict[str, Any] = {"dag_run_id": run_id, "logical_date": None, "conf": conf}
        if note:
            body["note"] = note
        path = f"/api/v2/dags/{dag_id}/dagRuns"
        attempt = 1
        while True:
            try:
                return self._call("POST", path, json=body)
            except AirflowError as error:
                if error.status == 409 and attempt > 1:
                    return self.run(dag_id, run_id)
                if not error.transient or attempt == TRIGGER_ATTEMPTS:
                    raise
            time.sleep(TRIGGER_RETRY_DELAY_S * attempt)
            attempt += 1

    def run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        return self._call("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}")

    def _call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        response = self._send(method, path, **kwargs)
        if response.status_code == 401 and self._token is not None:  # token expired
            self._token = None
            response = self._send(method, path, **kwargs)
        if response.status_code >= 400:
            raise _refusal(response, path)
        answer: dict[str, Any] = response.json()
        return answer

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self._access_token()}"}
        try:
            return self._http.request(method, self.base_url + path, headers=headers, **kwargs)
        except httpx.HTTPError as error:
            raise _unreachable(self.base_url, error) from error

    def _access_token(self) -> str:
        if self._token is None:
            password = self.options.password
            credentials = {
                "username": self.options.username or "",
                "password": password.get_secret_value() if password else "",
            }
            try:
                response = self._http.post(self.base_url + "/auth/token", json=credentials)
            except httpx.HTTPError as error:
                raise _unreachable(self.base_url, error) from error
            if response.status_code in (401, 403):
                raise AirflowError(
                    "Airflow refused the service's credentials (CINESENSE_AIRFLOW__USERNAME / "
                    "__PASSWORD).",
                    502,
                )
            if response.status_code >= 400 or "access_token" not in _json(response):
                raise AirflowError(
                    f"Airflow's /auth/token answered {response.status_code}; is "
                    f"{self.base_url} an Airflow 3 api-server?",
                    502,
                )
            self._token = str(_json(response)["access_token"])
        return self._token


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _unreachable(base_url: str, error: httpx.HTTPError) -> AirflowError:
    return AirflowError(
        f"Airflow at {base_url} cannot be reached ({type(error).__name__}); is the "
        "airflow-apiserver running?",
        502,
        transient=isinstance(error, httpx.TimeoutException),
    )


def _refusal(response: httpx.Response, path: str) -> AirflowError:
    detail = _json(response).get("detail", response.text[:200])
    if response.status_code == 403:
        return AirflowError(f"Airflow does not allow this for the service's user: {detail}", 403)
    if response.status_code in (400, 422):  # the DAG's Params refused the conf
        return AirflowError(f"Airflow refused the run's parameters: {detail}", 422)
    if response.status_code == 404:
        return AirflowError(f"Airflow does not know {path}: {detail}", 404)
    if response.status_code == 409:
        return AirflowError(f"Airflow already has this: {detail}", 409)
    database_error = isinstance(detail, dict) and detail.get("reason") == "Database error"
    return AirflowError(
        f"Airflow answered {response.status_code} to {path}: {detail}", 502, database_error
    )
