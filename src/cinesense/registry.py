"""The model registry on MLflow: register serving bundles, load by alias, roll back.

Each registered version of ``cinesense-sentiment`` is an MLflow pyfunc model whose
artifacts hold a serving bundle (:mod:`cinesense.model.onnx_predict`). Aliases, not
stages, say what is live: ``challenger`` marks the newest candidate, ``champion`` the
served model. Every gate decision is written on the version (tags ``gate.*``) and the
champion's history on the registered model (the gate, :mod:`cinesense.gate`, writes
both), so the MLflow UI shows why a version is or is not live, and ``rollback`` knows
where to go back to.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import os
import shutil
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import pandas as pd

from cinesense.config import Settings
from cinesense.errors import ModelError, RegistryError
from cinesense.model.onnx_predict import OnnxPredictor

log = logging.getLogger(__name__)
F = TypeVar("F", bound=Callable[..., Any])
CHAMPION, CHALLENGER = "champion", "challenger"
HISTORY_TAG = "champion_history"
BUNDLE_ARTIFACT = "bundle"


_environment_lock = threading.Lock()
_environment_users = 0
_environment_saved: dict[str, str | None] = {}


def request_environment(settings: Settings) -> dict[str, str]:
    """What bounds MLflow's requests. MLflow reads its timeout (whole seconds), retries and
    backoff only from these environment variables, at each request: it has no per-client
    setting."""
    return {
        "MLFLOW_HTTP_REQUEST_TIMEOUT": str(max(1, math.ceil(settings.mlflow.request_timeout_s))),
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES": str(settings.mlflow.max_retries),
        "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": os.environ.get(
            "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1"
        ),
        # MLflow prints run links to stdout when it talks to a server; the CLI's is JSON.
        "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true",
    }


@contextmanager
def mlflow_environment(settings: Settings) -> Iterator[None]:
    """MLflow's request bounds from ``settings`` for the calls inside, and the process
    environment as it was once the last caller (of any thread) leaves."""
    global _environment_users
    with _environment_lock:
        if _environment_users == 0:
            values = request_environment(settings)
            _environment_saved.clear()
            _environment_saved.update({key: os.environ.get(key) for key in values})
            os.environ.update(values)
        _environment_users += 1
    try:
        yield
    finally:
        with _environment_lock:
            _environment_users -= 1
            if _environment_users == 0:
                for key, value in _environment_saved.items():
                    if value is None:
                        os.environ.pop(key, None)
                    else:
                        os.environ[key] = value


def uses_mlflow(function: F) -> F:
    """Run ``function(settings, …)`` inside :func:`mlflow_environment`."""

    @functools.wraps(function)
    def wrapper(settings: Settings, *args: Any, **kwargs: Any) -> Any:
        with mlflow_environment(settings):
            return function(settings, *args, **kwargs)

    return wrapper  # type: ignore[return-value]


def connect(settings: Settings):
    """An MLflow client for the configured server, after checking that it answers.

    Call it inside :func:`mlflow_environment` (the public functions here are wrapped by
    :func:`uses_mlflow`), so every request is bounded by ``settings.mlflow``.
    """
    import mlflow
    from mlflow import MlflowClient

    uri = settings.tracking_uri
    if uri.startswith("http"):
        _check_server(uri, settings.mlflow.request_timeout_s, settings.mlflow.max_retries)
    else:
        settings.home.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def _check_server(uri: str, timeout_s: float, retries: int) -> None:
    error: Exception | None = None
    for attempt in range(retries + 1):
        try:
            with urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=timeout_s):
                return
        except (urllib.error.URLError, TimeoutError, ConnectionError) as problem:
            error = problem
            if attempt < retries:
                time.sleep(min(2**attempt * 0.5, 5))
    raise RegistryError(
        f"The MLflow server at {uri} does not answer ({error}) after {retries + 1} attempts. "
        "Start it (see README) or fix CINESENSE_MLFLOW__TRACKING_URI."
    )


@uses_mlflow
def experiment_id(settings: Settings) -> str:
    import mlflow

    experiment = mlflow.get_experiment_by_name(settings.mlflow.experiment)
    if experiment is not None:
        return str(experiment.experiment_id)
    location = None
    if not settings.tracking_uri.startswith("http"):
        location = (settings.home / "mlartifacts").resolve().as_uri()
    return str(mlflow.create_experiment(settings.mlflow.experiment, artifact_location=location))


# --- registration ------------------------------------------------------------------------


class SentimentModel:
    """The pyfunc wrapper: text column in, label / probability / confidence / rating out."""

    def load_context(self, context: Any) -> None:
        self.predictor = OnnxPredictor.from_bundle(context.artifacts[BUNDLE_ARTIFACT])

    # No type hints on purpose: MLflow would derive a schema from them; the logged
    # signature already describes the input.
    def predict(self, context, model_input, params=None):
        predictions = self.predictor.predict(list(model_input["text"].astype(str)))
        columns = ("label", "probability_positive", "confidence", "rating")
        return pd.DataFrame([{c: getattr(p, c) for c in columns} for p in predictions])


@uses_mlflow
def register_bundle(settings: Settings, run_id: str, bundle_dir: Path, tags: dict[str, str]) -> str:
    """Log ``bundle_dir`` as a pyfunc model of run ``run_id``, register it as a new version,
    tag it and point ``challenger`` at it. Returns the version number."""
    import mlflow
    from mlflow.models import infer_signature
    from mlflow.pyfunc import PythonModel

    client = connect(settings)
    python_model = type("CinesenseSentiment", (SentimentModel, PythonModel), {})()
    example = pd.DataFrame({"text": ["배우들 연기가 정말 좋았어요", "시간 아까운 영화"]})
    output = pd.DataFrame(
        {
            "label": ["positive", "negative"],
            "probability_positive": [0.9, 0.1],
            "confidence": [0.9, 0.9],
            "rating": [9.0, 2.0],
        }
    )
    name = settings.mlflow.model_name
    before: set[str] | None = None
    try:
        before = _versions_of_run(client, name, run_id)
        with tempfile.TemporaryDirectory() as scratch, mlflow.start_run(run_id=run_id):
            staged = Path(scratch) / BUNDLE_ARTIFACT  # MLflow keeps the folder's own name
            shutil.copytree(bundle_dir, staged)
            info = mlflow.pyfunc.log_model(
                name="model",
                python_model=python_model,
                artifacts={BUNDLE_ARTIFACT: str(staged)},
                signature=infer_signature(example, output),
                input_example=example,
                registered_model_name=settings.mlflow.model_name,
                pip_requirements=["cinesense", "onnxruntime", "tokenizers"],
            )
    except Exception as error:  # MLflow raises many types; none may leave a half state
        removed = [] if before is None else _remove_new_versions(client, name, run_id, before)
        raise RegistryError(
            f"Registering the model failed: {error}. Check that the MLflow server is up and "
            "that its artifact store (the bucket behind --artifacts-destination) exists and "
            "accepts the server's credentials."
            + (f" Removed the half-registered version(s) {', '.join(removed)}." if removed else "")
        ) from error
    version = str(info.registered_model_version)
    try:
        for key, value in tags.items():
            client.set_model_version_tag(settings.mlflow.model_name, version, key, value)
        client.set_registered_model_alias(settings.mlflow.model_name, CHALLENGER, version)
    except Exception as error:
        _delete_version(client, settings.mlflow.model_name, version)
        raise RegistryError(
            f"Tagging version {version} failed, so it was removed: {error}"
        ) from error
    return version


def _versions_of_run(client, name: str, run_id: str) -> set[str]:
    found = client.search_model_versions(f"name = '{name}' and run_id = '{run_id}'")
    return {str(v.version) for v in found}


def _remove_new_versions(client, name: str, run_id: str, before: set[str]) -> list[str]:
    """Delete versions of ``run_id`` a failed registration created (a lost response may
    even have been retried into two); best effort, the server may be what failed."""
    try:
        new = sorted(_versions_of_run(client, name, run_id) - before, key=int)
    except Exception:
        log.warning("could not check %s for half-registered versions of run %s", name, run_id)
        return []
    for version in new:
        _delete_version(client, name, version)
    return new


def _delete_version(client, name: str, version: str) -> None:
    try:
        client.delete_model_version(name, version)
    except Exception:  # best effort: the registry may be the thing that is down
        log.warning("could not remove half-registered version %s of %s", version, name)


# --- loading -----------------------------------------------------------------------------


@uses_mlflow
def download_bundle(settings: Settings, reference: str = CHAMPION) -> tuple[Path, str]:
    """Download a version's bundle (``reference``: an alias or a version number)."""
    import mlflow
    from mlflow.exceptions import MlflowException

    client = connect(settings)
    name = settings.mlflow.model_name
    try:
        if reference.isdigit():
            version = client.get_model_version(name, reference)
        else:
            version = client.get_model_version_by_alias(name, reference)
    except MlflowException as error:
        raise ModelError(f"No model version '{reference}' of {name} in the registry.") from error
    target = settings.model_cache_dir / name / str(version.version)
    bundle = target / "artifacts" / BUNDLE_ARTIFACT
    if not (bundle / "manifest.json").exists():
        try:
            mlflow.artifacts.download_artifacts(
                artifact_uri=f"models:/{name}/{version.version}", dst_path=str(target)
            )
        except MlflowException as error:
            raise RegistryError(f"Downloading version {version.version} failed: {error}") from error
    return bundle, str(version.version)


def load_predictor(
    settings: Settings,
    reference: str = CHAMPION,
    threads: int | None = None,
    spinning: bool = True,
) -> tuple[OnnxPredictor, str]:
    """The served predictor of a version (onnxruntime + tokenizers only), verified."""
    bundle, version = download_bundle(settings, reference)
    return OnnxPredictor.from_bundle(bundle, threads, spinning), version


@uses_mlflow
def alias_version(settings: Settings, alias: str = CHAMPION) -> str | None:
    """The version an alias points at now (``None`` when unset): a cheap poll for servers."""
    if alias.isdigit():
        return alias
    return alias_of(connect(settings), settings.mlflow.model_name, alias)


@uses_mlflow
def version_details(settings: Settings, version: str) -> dict[str, Any]:
    """What a person asks about a served version: aliases, metrics, quantization, and when
    it last became champion."""
    from mlflow.exceptions import MlflowException

    client = connect(settings)
    name = settings.mlflow.model_name
    try:
        found = client.get_model_version(name, version)
        metrics = client.get_run(found.run_id).data.metrics if found.run_id else {}
        history = champion_history(client, name)
    except MlflowException as error:
        raise RegistryError(f"Reading version {version} of {name} failed: {error}") from error
    since = [event["at"] for event in history if event.get("version") == str(version)]
    return {
        "name": name,
        "version": str(found.version),
        "aliases": sorted(found.aliases),
        "tags": dict(found.tags),
        "metrics": {key: float(value) for key, value in sorted(metrics.items())},
        "champion_since": since[-1] if since else None,
    }


def alias_of(client, name: str, alias: str) -> str | None:
    from mlflow.exceptions import MlflowException

    try:
        return str(client.get_model_version_by_alias(name, alias).version)
    except MlflowException:
        return None


def champion_history(client, name: str) -> list[dict[str, str]]:
    tags = client.get_registered_model(name).tags
    return json.loads(tags.get(HISTORY_TAG, "[]"))


def champion_stack(history: list[dict[str, str]]) -> list[str]:
    """Replay the history: a promotion pushes a version, a rollback pops the top one."""
    stack: list[str] = []
    for event in history:
        if event.get("kind") == "rollback":
            if stack:
                stack.pop()
        else:
            stack.append(event["version"])
    return stack


def append_history(client, name: str, version: str, reason: str, kind: str = "promotion") -> None:
    history = champion_history(client, name)
    history.append(
        {
            "kind": kind,
            "version": version,
            "reason": reason,
            "at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
    )
    client.set_registered_model_tag(name, HISTORY_TAG, json.dumps(history[-100:]))


@uses_mlflow
def rollback(settings: Settings) -> str:
    """Move ``champion`` back to the version that held it before the current one."""
    client = connect(settings)
    name = settings.mlflow.model_name
    current = alias_of(client, name, CHAMPION)
    stack = champion_stack(champion_history(client, name))
    if current is None or len(stack) < 2:
        raise RegistryError("There is no earlier champion to roll back to.")
    previous = stack[-2]
    client.set_registered_model_alias(name, CHAMPION, previous)
    append_history(client, name, previous, f"rollback from v{current}", kind="rollback")
    client.set_model_version_tag(
        name, current, "gate.rolled_back_at", time.strftime("%Y-%m-%dT%H:%M:%S%z")
    )
    return previous


@uses_mlflow
def list_versions(settings: Settings) -> list[dict[str, object]]:
    """Every version with its aliases and gate tags (aliases read per version: MLflow's
    search does not return them)."""
    from mlflow.exceptions import MlflowException

    client = connect(settings)
    name = settings.mlflow.model_name
    try:
        versions = client.search_model_versions(f"name = '{name}'")
    except MlflowException as error:
        raise RegistryError(f"Listing {name} failed: {error}") from error
    rows = []
    for item in sorted(versions, key=lambda v: int(v.version)):
        full = client.get_model_version(name, item.version)
        rows.append(
            {
                "version": str(full.version),
                "aliases": sorted(full.aliases),
                "run_id": full.run_id,
                "tags": dict(full.tags),
            }
        )
    return rows
