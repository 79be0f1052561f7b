"""The promotion gate: a registered version becomes ``champion`` only if it beats the
champion by a margin, and the TF-IDF baseline, on the same balanced test reviews.

Every decision is recorded on the version (tags ``gate.*``); a promotion is appended to
the registered model's champion history (:mod:`cinesense.registry`).
"""

from __future__ import annotations

import fcntl
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import pandas as pd

from cinesense.config import Settings
from cinesense.data.dataset import NEUTRAL, balanced_binary
from cinesense.errors import RegistryError
from cinesense.model.heads import positive_probability
from cinesense.model.onnx_predict import OnnxPredictor
from cinesense.registry import (
    CHAMPION,
    alias_of,
    append_history,
    connect,
    load_predictor,
    uses_mlflow,
)


@dataclass(frozen=True)
class GateDecision:
    version: str
    promoted: bool
    reason: str
    challenger_accuracy: float
    champion_version: str | None
    champion_accuracy: float | None


def bundle_accuracy(predictor: OnnxPredictor, evaluation: pd.DataFrame) -> float:
    logits = predictor.logits(list(evaluation["text"])).astype(np.float64)
    probability = positive_probability(logits, predictor.label_map)
    return float(((probability >= 0.5).astype(int) == evaluation["label"].to_numpy()).mean())


def gate_set(frame: pd.DataFrame, seed: int) -> pd.DataFrame:
    """The fixed evaluation set both models are scored on: balanced labelled reviews."""
    return balanced_binary(frame[frame["label"] != NEUTRAL], seed)


@uses_mlflow
def promote(
    settings: Settings,
    version: str,
    evaluation: pd.DataFrame,
    baseline_accuracy: float,
    margin: float | None = None,
    attempts: int = 3,
) -> GateDecision:
    """Make ``version`` champion if it beats the champion by ``margin`` on ``evaluation``
    and beats the TF-IDF baseline; record the decision either way. Idempotent.

    Promotions on one host are serialized by a file lock (MLflow has no compare-and-set
    for aliases); if the champion still moves meanwhile — a promoter on another host —
    the comparison is redone against the new champion.
    """
    client = connect(settings)
    margin = settings.mlflow.promotion_margin if margin is None else margin
    challenger, _ = load_predictor(settings, version)
    challenger_accuracy = bundle_accuracy(challenger, evaluation)
    with promotion_lock(settings):
        return _promote_locked(
            settings,
            client,
            version,
            challenger_accuracy,
            evaluation,
            baseline_accuracy,
            margin,
            attempts,
        )


@contextmanager
def promotion_lock(settings: Settings) -> Iterator[None]:
    directory = settings.home / "locks"
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / f"promote-{settings.mlflow.model_name}.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _promote_locked(
    settings: Settings,
    client,
    version: str,
    challenger_accuracy: float,
    evaluation: pd.DataFrame,
    baseline_accuracy: float,
    margin: float,
    attempts: int,
) -> GateDecision:
    name = settings.mlflow.model_name
    for _ in range(attempts):
        champion_version = alias_of(client, name, CHAMPION)
        decision = _decide(
            settings,
            version,
            challenger_accuracy,
            champion_version,
            evaluation,
            baseline_accuracy,
            margin,
        )
        if champion_version != alias_of(client, name, CHAMPION):
            continue  # someone promoted meanwhile: compare again
        if decision.promoted:
            client.set_registered_model_alias(name, CHAMPION, version)
            append_history(client, name, version, decision.reason)
        _record(client, name, decision)
        return decision
    raise RegistryError("The champion kept changing during the promotion; try again.")


def _decide(
    settings: Settings,
    version: str,
    accuracy: float,
    champion: str | None,
    evaluation: pd.DataFrame,
    baseline_accuracy: float,
    margin: float,
) -> GateDecision:
    on = f"on the gate's {len(evaluation)} reviews"
    if champion == version:
        return GateDecision(version, False, "already champion", accuracy, champion, accuracy)
    if accuracy <= baseline_accuracy:
        return GateDecision(
            version,
            False,
            f"accuracy {accuracy:.4f} does not beat the TF-IDF baseline's "
            f"{baseline_accuracy:.4f} {on}",
            accuracy,
            champion,
            None,
        )
    if champion is None:
        return GateDecision(
            version, True, f"first champion (accuracy {accuracy:.4f} {on})", accuracy, None, None
        )
    predictor, _ = load_predictor(settings, champion)
    champion_accuracy = bundle_accuracy(predictor, evaluation)
    gain = accuracy - champion_accuracy
    promoted = gain >= margin
    verdict = "beats" if promoted else "does not beat"
    reason = (
        f"accuracy {accuracy:.4f} {verdict} champion v{champion}'s {champion_accuracy:.4f} "
        f"by the margin {margin:.4f} (gain {gain:+.4f}) {on}"
    )
    return GateDecision(version, promoted, reason, accuracy, champion, champion_accuracy)


def _record(client, name: str, decision: GateDecision) -> None:
    tags = {
        "gate.decision": "promoted" if decision.promoted else "rejected",
        "gate.reason": decision.reason,
        "gate.challenger_accuracy": f"{decision.challenger_accuracy:.4f}",
        "gate.champion_version": decision.champion_version or "none",
        "gate.decided_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    if decision.champion_accuracy is not None:
        tags["gate.champion_accuracy"] = f"{decision.champion_accuracy:.4f}"
    for key, value in tags.items():
        client.set_model_version_tag(name, decision.version, key, value)


@uses_mlflow
def baseline_accuracy_of(settings: Settings, version: str) -> float:
    client = connect(settings)
    tags = client.get_model_version(settings.mlflow.model_name, version).tags
    try:
        return float(tags["baseline_accuracy"])
    except (KeyError, ValueError) as error:
        raise RegistryError(
            f"Version {version} has no baseline_accuracy tag; register it with "
            "an evaluation report that includes the TF-IDF baseline."
        ) from error
