"""A training run recorded in an embedded MLflow store (SQLite in CINESENSE_HOME)."""

import json
from pathlib import Path

import pytest

from cinesense.config import Settings
from cinesense.data.dataset import Dataset
from cinesense.model.report import evaluation_report
from cinesense.tracking import log_training_run

pytestmark = pytest.mark.slow


def test_training_run_is_recorded(
    tmp_path: Path, tiny_model: Path, sample_dataset: Dataset
) -> None:
    from mlflow import MlflowClient

    settings = Settings(home=tmp_path)
    manifest = json.loads((tiny_model / "training_manifest.json").read_text())
    report = evaluation_report(tiny_model, sample_dataset, settings, with_baseline=True)
    run_id = log_training_run(
        settings, sample_dataset, "file:///datasets/default", manifest, report
    )
    run = MlflowClient(tracking_uri=settings.tracking_uri).get_run(run_id)
    assert run.data.params["train.epochs"] == str(settings.train.epochs)
    assert run.data.metrics["test_accuracy"] == pytest.approx(report["model"]["accuracy"])
    assert "baseline_accuracy" in run.data.metrics
    assert run.data.tags["dataset_fingerprint"] == sample_dataset.manifest.fingerprint
    assert "version.torch" in run.data.tags
    inputs = run.inputs.dataset_inputs
    assert inputs and inputs[0].dataset.digest == sample_dataset.manifest.fingerprint[:36]
    history = MlflowClient(tracking_uri=settings.tracking_uri).get_metric_history(
        run_id, "validation_accuracy"
    )
    assert len(history) == len(manifest["history"])
