"""Training runs in MLflow: configuration, data lineage, learning curve, environment.

``log_training_run`` records one fine-tuning run in the named experiment: every setting
as a parameter, the dataset as an MLflow dataset input (its fingerprint as the digest),
validation accuracy per evaluation step, the final metrics of the model and of the TF-IDF
baseline, and the package versions and git commit that produced it. Under the run's
``evaluation/`` artifact folder go a confusion-matrix image, a reliability (calibration)
plot, the table of the most confident wrong predictions and the full evaluation report.
``register_trained_bundle`` adds the serving bundle's checks and the sizes and latencies
of PyTorch FP32, ONNX FP32 and ONNX INT8 (batch 1 and 32) as metrics, then registers it.
Callers go through :func:`cinesense.pipelines.train.register_version`, the one register
path of the CLI and the DAGs.
"""

from __future__ import annotations

import json
import logging
import subprocess
import warnings
from importlib import metadata
from pathlib import Path

from cinesense.config import Settings
from cinesense.data.dataset import Dataset
from cinesense.errors import ModelError, RegistryError
from cinesense.registry import connect, experiment_id, register_bundle, uses_mlflow

log = logging.getLogger(__name__)
EVALUATION_DIR = "evaluation"
WORST_ERROR_COLUMNS = (
    "text",
    "label",
    "rating",
    "predicted_label",
    "probability_positive",
    "predicted_rating",
)
LATENCY_REPEATS = 3  # a quick profile at registration; benchmarks/ measures thoroughly
LATENCY_TEXTS = 64
PACKAGES = ("cinesense", "torch", "transformers", "tokenizers", "onnxruntime", "mlflow")


def flatten(prefix: str, values: dict[str, object]) -> dict[str, str]:
    return {f"{prefix}.{key}": str(value) for key, value in values.items()}


def environment_tags() -> dict[str, str]:
    tags = {}
    for package in PACKAGES:
        try:
            tags[f"version.{package}"] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    commit = _git_commit()
    if commit:
        tags["git_commit"] = commit
    return tags


def _git_commit() -> str | None:
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            cwd=Path(__file__).parent,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return result.stdout.strip() or None


def log_evaluation(report: dict) -> list[str]:
    """Log the evaluation figures, the worst-errors table and the report itself to the
    active run under ``evaluation/``; returns the artifact paths written."""
    import mlflow
    import pandas as pd

    from cinesense.model.plots import confusion_matrix_figure, reliability_figure

    model = report["model"]
    written = []
    reviews = model.get("test_balanced_reviews", "?")
    matrix = model.get("confusion_matrix")
    if matrix:
        path = f"{EVALUATION_DIR}/confusion_matrix.png"
        title = f"Confusion matrix ({reviews} balanced test reviews)"
        mlflow.log_figure(confusion_matrix_figure(matrix, title), path)
        written.append(path)
    reliability = model.get("reliability")
    if reliability:
        path = f"{EVALUATION_DIR}/calibration.png"
        title = f"Reliability (ECE {model.get('ece', float('nan')):.3f}, {reviews} reviews)"
        mlflow.log_figure(reliability_figure(reliability, title), path)
        written.append(path)
    errors = model.get("worst_errors")
    if errors is not None:
        path = f"{EVALUATION_DIR}/worst_errors.json"
        table = pd.DataFrame(errors, columns=list(WORST_ERROR_COLUMNS))
        # object columns: MLflow looks for image cells with select_dtypes("object"), which
        # pandas 3 deprecates for its own string dtype
        mlflow.log_table(table.astype(object), path)
        written.append(path)
    if reliability is None or errors is None:
        log.warning(
            "the evaluation report has no reliability table or worst errors (written by an "
            "older cinesense); run `cinesense evaluate --report PATH` again to log them"
        )
    path = f"{EVALUATION_DIR}/report.json"
    mlflow.log_dict(report, path)
    written.append(path)
    return written


@uses_mlflow
def log_training_run(
    settings: Settings,
    dataset: Dataset,
    dataset_uri: str,
    training_manifest: dict,
    report: dict,
    extra_metrics: dict[str, float] | None = None,
) -> str:
    """Record a finished training run; returns its MLflow run id.

    ``extra_metrics`` (the serving bundle's checks, sizes and latencies) are logged too.
    """
    from mlflow.exceptions import MlflowException

    connect(settings)
    try:
        return _log_run(settings, dataset, dataset_uri, training_manifest, report, extra_metrics)
    except MlflowException as error:
        raise RegistryError(
            f"Logging the training run in MLflow failed: {error}. Check that the MLflow "
            "server is up and that its artifact store (the bucket behind "
            "--artifacts-destination) exists and accepts the server's credentials."
        ) from error


def _log_run(
    settings: Settings,
    dataset: Dataset,
    dataset_uri: str,
    training_manifest: dict,
    report: dict,
    extra_metrics: dict[str, float] | None,
) -> str:
    import mlflow
    from mlflow.data.pandas_dataset import from_pandas

    with mlflow.start_run(experiment_id=experiment_id(settings)) as run:
        mlflow.log_params(
            {
                **flatten("train", settings.train.model_dump()),
                **flatten("data", settings.data.model_dump()),
                "base_model": training_manifest.get("base_model", ""),
                "learning_rate_used": training_manifest.get("learning_rate", ""),
            }
        )
        with warnings.catch_warnings():
            # MLflow registers its local-artifact source twice and warns that a file URI
            # "can be interpreted in multiple ways"; both readings are the same class.
            warnings.filterwarnings("ignore", message="The specified dataset source")
            # Schema inference hints that integer columns cannot hold missing values; this
            # schema only describes the logged sample, nothing is validated against it.
            warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer")
            source = from_pandas(
                dataset["train"].head(1000),
                source=dataset_uri,
                name="reviews",
                digest=dataset.manifest.fingerprint[:36],
            )
            mlflow.log_input(
                source,
                context="training",
                tags={
                    "fingerprint": dataset.manifest.fingerprint,
                    **{f"size.{k}": str(v) for k, v in dataset.manifest.sizes.items()},
                },
            )
        for point in training_manifest.get("history", []):
            mlflow.log_metric(
                "validation_accuracy", point["validation_accuracy"], step=int(point["step"])
            )
        for name, part in (("test", report["model"]), ("baseline", report.get("baseline", {}))):
            mlflow.log_metrics(
                {
                    f"{name}_{key}": float(value)
                    for key, value in part.items()
                    if isinstance(value, int | float) and not isinstance(value, bool)
                }
            )
        if extra_metrics:
            mlflow.log_metrics({key: float(value) for key, value in extra_metrics.items()})
        log_evaluation(report)
        mlflow.set_tags({**environment_tags(), "dataset_fingerprint": dataset.manifest.fingerprint})
        return str(run.info.run_id)


def _read_report(report_path: Path) -> dict:
    if not report_path.exists():
        raise ModelError(
            f"{report_path}: no evaluation report. Run `cinesense evaluate "
            "--report PATH` first; the gate needs the baseline's accuracy."
        )
    report = json.loads(report_path.read_text())
    if "baseline" not in report:
        raise ModelError(f"{report_path} has no TF-IDF baseline; evaluate with --baseline.")
    return report


def record_training_run(
    settings: Settings, model_dir: Path, report_path: Path, dataset: Dataset, dataset_uri: str
) -> str:
    """Log the training run of ``model_dir`` (settings, data, curve, evaluation); its run id.

    The serving bundle's metrics and the registered version are added later by
    :func:`register_trained_bundle`, so a run whose quantization fails is still recorded.
    """
    report = _read_report(report_path)
    training = json.loads((Path(model_dir) / "training_manifest.json").read_text())
    return log_training_run(settings, dataset, dataset_uri, training, report)


@uses_mlflow
def register_trained_bundle(
    settings: Settings,
    run_id: str,
    model_dir: Path,
    bundle_dir: Path,
    report_path: Path,
    dataset: Dataset,
    bundle: dict,
) -> dict:
    """Add the bundle's checks, sizes and latencies to run ``run_id`` and register the
    bundle as a new version of that run (alias ``challenger``).

    ``bundle`` is the bundle's manifest as :func:`verify_bundle` returned it (the caller
    verifies once, before anything is written). The version is tagged with what the gate
    and the MLflow UI need: test and baseline accuracy, data fingerprint, base model and
    the served format with its reason.
    """
    import mlflow
    from mlflow.exceptions import MlflowException

    from cinesense.model.speed import profile_formats

    report = _read_report(report_path)
    training = json.loads((Path(model_dir) / "training_manifest.json").read_text())
    bundle_metrics = {
        f"onnx_{name}": float(bundle[name])
        for name in ("accuracy_fp32", "accuracy_int8", "parity_max_abs_diff")
    }
    bundle_metrics.update(
        profile_formats(
            model_dir,
            bundle_dir,
            dataset["test"]["text"].head(LATENCY_TEXTS).tolist(),
            repeats=LATENCY_REPEATS,
            threads=settings.num_threads,
        )
    )
    connect(settings)
    try:
        with mlflow.start_run(run_id=run_id):
            mlflow.log_metrics({key: float(value) for key, value in bundle_metrics.items()})
    except MlflowException as error:
        raise RegistryError(
            f"Logging the serving bundle's metrics to run {run_id} failed: {error}. Check "
            "that the MLflow server is up."
        ) from error
    tags = {
        "dataset_fingerprint": dataset.manifest.fingerprint,
        "base_model": str(training.get("base_model")),
        "served_format": bundle["served"],
        "quantization_reason": bundle["reason"],
        "test_accuracy": f"{report['model']['accuracy']:.4f}",
        "baseline_accuracy": f"{report['baseline']['accuracy']:.4f}",
    }
    version = register_bundle(settings, run_id, bundle_dir, tags)
    return {"version": version, "run_id": run_id, **tags}
