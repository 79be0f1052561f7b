"""The first champion: when the registry has none, the serving bundle shipped with the
package is registered and gated like any trained version, so the API and the UI answer
with a real model minutes after ``make up``. Every later champion comes from the
``train_model`` DAG.

The gate scores the bundle and the TF-IDF baseline on the same balanced test reviews of
the review sample bundled in the package (its movie-split test part); the run in MLflow
records that comparison and the bundle's own manifest.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import numpy as np

from cinesense.config import Settings
from cinesense.stack.services import platform_settings

log = logging.getLogger(__name__)
SOURCE_TAG = "cinesense.source"


def baseline_accuracy(settings: Settings, train, evaluation) -> float:
    from cinesense.model.baseline import TfidfBaseline

    baseline = TfidfBaseline.fit(train, seed=settings.data.seed)
    predicted = (baseline.probability_positive(list(evaluation["text"])) >= 0.5).astype(int)
    return float((predicted == evaluation["label"].to_numpy()).mean())


def _numbers(prefix: str, values: dict) -> dict[str, float]:
    found: dict[str, float] = {}
    for key, value in values.items():
        if isinstance(value, bool):
            continue
        if isinstance(value, int | float) and np.isfinite(value):
            found[f"{prefix}{key}"] = float(value)
        elif isinstance(value, dict):
            found.update(_numbers(f"{prefix}{key}.", value))
    return found


def _served_figures(manifest: dict) -> dict[str, float]:
    """The figures a trained version carries under the names the model page reads: its
    test accuracy (the benchmark's held-out movies) and the served file's size."""
    figures = {}
    accuracy = manifest.get("shipped", {}).get("benchmark", {}).get("accuracy")
    if isinstance(accuracy, int | float):
        figures["test_accuracy"] = float(accuracy)
    size = manifest.get("sizes_mb", {}).get(manifest["served_file"])
    if isinstance(size, int | float):
        figures[f"size_mb_onnx_{manifest['served']}"] = float(size)
    return figures


def ensure_champion(settings: Settings) -> str:
    """Register and gate the shipped bundle when there is no champion; what happened."""
    import mlflow

    from cinesense.data.corpus import read_corpus, sample_corpus_path
    from cinesense.data.dataset import build_dataset
    from cinesense.gate import gate_set, promote
    from cinesense.model.onnx_predict import verify_bundle
    from cinesense.registry import (
        CHAMPION,
        alias_version,
        connect,
        experiment_id,
        register_bundle,
    )

    platform = platform_settings(settings)
    champion = alias_version(platform, CHAMPION)
    if champion is not None:
        return f"champion: version {champion}"
    bundle = settings.stack.default_bundle
    if bundle is None or not (Path(bundle) / "manifest.json").exists():
        return (
            f"no champion yet and no shipped bundle at {bundle}: the API answers 503 until "
            "train_model promotes one (or set CINESENSE_STACK__DEFAULT_BUNDLE)"
        )
    manifest = verify_bundle(Path(bundle))
    sample = build_dataset(read_corpus(sample_corpus_path()), settings.data)
    evaluation = gate_set(sample["test"], settings.data.seed)
    baseline = baseline_accuracy(settings, sample["train"], evaluation)

    connect(platform)
    with mlflow.start_run(
        experiment_id=experiment_id(platform), run_name="default-champion"
    ) as run:
        mlflow.set_tags({SOURCE_TAG: "shipped bundle", "bundle_dir": str(bundle)})
        mlflow.log_params({"source": "shipped bundle", "served_file": manifest["served_file"]})
        mlflow.log_metrics(
            {
                **_numbers("bundle.", manifest),
                "gate_baseline_accuracy": baseline,
                **_served_figures(manifest),
            }
        )
        mlflow.log_dict(manifest, "bundle_manifest.json")
    # The model page sets test accuracy beside the baseline's: both from the benchmark's
    # held-out movies when the bundle carries them (the gate's comparison, on the small
    # bundled sample, stays in the gate.* tags and the run's gate_baseline_accuracy).
    benchmark = manifest.get("shipped", {}).get("benchmark", {})
    tags = {
        "baseline_accuracy": f"{benchmark.get('baseline_accuracy', baseline):.6f}",
        SOURCE_TAG: "shipped bundle",
        "served_file": str(manifest["served_file"]),
        "served_format": str(manifest["served"]),
        "gate.evaluation": "review sample bundled in the package (test movies, balanced)",
    }
    version = register_bundle(platform, run.info.run_id, Path(bundle), tags)
    decision = promote(platform, version, evaluation, baseline)
    log.info("default champion: %s", json.dumps(decision.__dict__, default=str))
    verdict = "champion" if decision.promoted else "not promoted"
    return f"shipped bundle registered as version {version}: {verdict} ({decision.reason})"


def first_champion(settings: Settings, attempts: int = 3) -> str:
    """``ensure_champion``, retried: MLflow may answer slowly while the rest of the
    platform starts (a timed-out create is retried by the client, then refused as a
    duplicate)."""
    for attempt in range(1, attempts + 1):
        try:
            return ensure_champion(settings)
        except Exception:
            if attempt == attempts:
                raise
            time.sleep(5)
    raise AssertionError("unreachable")
