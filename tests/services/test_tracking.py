"""A training run recorded in an embedded MLflow store (SQLite in CINESENSE_HOME)."""

import json
from pathlib import Path

import pytest

from cinesense.config import Settings
from cinesense.data.dataset import Dataset, save_dataset
from cinesense.model.report import evaluation_report
from cinesense.model.speed import BATCH_SIZES, FORMATS
from cinesense.pipelines.train import register_version
from cinesense.tracking import log_training_run

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def report(tiny_model: Path, sample_dataset: Dataset) -> dict:
    return evaluation_report(tiny_model, sample_dataset, Settings(), with_baseline=True)


def test_training_run_is_recorded(
    tmp_path: Path, tiny_model: Path, sample_dataset: Dataset, report: dict
) -> None:
    from mlflow import MlflowClient

    settings = Settings(home=tmp_path)
    manifest = json.loads((tiny_model / "training_manifest.json").read_text())
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


def test_registration_logs_evaluation_artifacts_sizes_and_latencies(
    tmp_path: Path, tiny_model: Path, tiny_bundle: Path, sample_dataset: Dataset, report: dict
) -> None:
    from mlflow import MlflowClient
    from mlflow.artifacts import download_artifacts

    settings = Settings(home=tmp_path, num_threads=1)
    report_path = tmp_path / "evaluation.json"
    report_path.write_text(json.dumps(report, ensure_ascii=False))
    dataset_dir = tmp_path / "dataset"
    save_dataset(sample_dataset, dataset_dir)
    result = register_version(settings, None, tiny_model, tiny_bundle, report_path, dataset_dir)
    client = MlflowClient(tracking_uri=settings.tracking_uri)
    run_id = result["run_id"]
    files = {item.path for item in client.list_artifacts(run_id, "evaluation")}
    assert files == {
        "evaluation/confusion_matrix.png",
        "evaluation/calibration.png",
        "evaluation/worst_errors.json",
        "evaluation/report.json",
    }
    images = Path(
        download_artifacts(
            run_id=run_id,
            artifact_path="evaluation",
            dst_path=str(tmp_path / "dl"),
            tracking_uri=settings.tracking_uri,
        )
    )
    for image in ("confusion_matrix.png", "calibration.png"):
        assert (images / image).read_bytes().startswith(b"\x89PNG")
    table = json.loads((images / "worst_errors.json").read_text())
    assert table["columns"][:3] == ["text", "label", "rating"]
    assert len(table["data"]) == len(report["model"]["worst_errors"]) > 0

    metrics = client.get_run(run_id).data.metrics
    for name in FORMATS:
        assert metrics[f"size_mb_{name}"] > 0
        for batch in BATCH_SIZES:
            assert metrics[f"latency_ms_{name}_batch{batch}"] > 0
            assert metrics[f"reviews_per_s_{name}_batch{batch}"] > 0
    assert metrics["size_mb_onnx_int8"] < metrics["size_mb_onnx_fp32"]
    assert metrics["onnx_parity_max_abs_diff"] < 1e-3
    version = client.get_model_version(settings.mlflow.model_name, result["version"])
    assert version.tags["served_format"] in {"int8", "fp32"}
    assert version.aliases == ["challenger"]
