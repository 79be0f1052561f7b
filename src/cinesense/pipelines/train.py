"""Stage *train*: the training job's steps, what the CLI commands and the Airflow tasks call.

Each function does one step and returns what the next step needs — a directory, an MLflow
run id, a model version, a few counts — so an orchestrator can hand the next task a path
or an id, never a DataFrame or model bytes.

:func:`~cinesense.pipelines.dataset.build_training_dataset` → :func:`train_sentiment` →
:func:`evaluate_sentiment` → :func:`track_training_run` → :func:`quantize_sentiment` →
:func:`register_version` → :func:`gate_version` → :func:`training_message`.
Retraining on new data: :func:`should_train`. The self-built base model:
:func:`pretrain_base`.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cinesense.config import Settings
from cinesense.errors import DataError
from cinesense.pipelines.dataset import corpus_info
from cinesense.storage import ObjectStore, open_store

if TYPE_CHECKING:
    from cinesense.gate import GateDecision

log = logging.getLogger(__name__)

TRAINING_WATERMARK = "pipelines/training_watermark.json"


def pretrain_base(
    settings: Settings,
    dataset_dir: Path,
    target: Path,
    text_files: list[Path] | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """The self-built base model from the dataset's train and validation text (never its
    test movies) plus any extra review files; saved at ``target``."""
    from cinesense.data.corpus import read_corpus
    from cinesense.data.dataset import load_dataset
    from cinesense.model.pretrain import pretrain
    from cinesense.text import normalize_review

    data = load_dataset(dataset_dir)
    texts = [*data["train"]["text"], *data["validation"]["text"]]
    for path in text_files or []:
        texts.extend(normalize_review(t) for t in read_corpus(path)["text"])
    result = pretrain(
        texts,
        target,
        settings.pretrain,
        {"dataset": data.manifest.fingerprint, "extra_files": [str(p) for p in text_files or []]},
        progress=progress,
    )
    return {
        "directory": str(target),
        "steps": result.steps,
        "mlm_loss": round(result.final_loss, 4),
        "minutes": round(result.minutes, 2),
    }


def train_sentiment(
    settings: Settings, dataset_dir: Path, target: Path, progress: bool = True
) -> dict[str, Any]:
    """Fine-tune the sentiment + rating model (``settings.train``) on a saved dataset."""
    from cinesense.data.dataset import load_dataset
    from cinesense.model.finetune import finetune

    result = finetune(load_dataset(dataset_dir), target, settings, progress=progress)
    return {
        "directory": str(target),
        "steps": result.steps,
        "best_step": result.best_step,
        "validation_accuracy": round(result.best_validation_accuracy, 4),
        "minutes": round(result.minutes, 2),
    }


def evaluate_sentiment(
    settings: Settings,
    model_dir: Path,
    dataset_dir: Path,
    report_path: Path | None = None,
    with_baseline: bool = True,
    test_file: Path | None = None,
) -> dict[str, object]:
    """The evaluation report (model beside the TF-IDF baseline), also written to
    ``report_path`` when given."""
    from cinesense.data.corpus import read_corpus
    from cinesense.data.dataset import load_dataset, prepare_reviews
    from cinesense.model.report import evaluation_report

    loaded = load_dataset(dataset_dir)
    test = prepare_reviews(read_corpus(test_file), settings.data)[0] if test_file else None
    report = evaluation_report(model_dir, loaded, settings, with_baseline=with_baseline, test=test)
    if report_path is not None:
        Path(report_path).write_text(json.dumps(report, ensure_ascii=False, indent=2))
    return report


def evaluate_served(
    settings: Settings,
    dataset_dir: Path,
    bundle: Path | None = None,
    registry: str | None = None,
    test_file: Path | None = None,
    report_path: Path | None = None,
    with_baseline: bool = True,
) -> dict[str, object]:
    """The same report for a serving bundle — a directory or a registered version, scored
    with ONNX Runtime exactly as the service scores it — on ``test_file`` (any labelled
    review file) or the dataset's test movies. The baseline needs the dataset's train split
    and is left out when there is no dataset."""
    from cinesense.data.corpus import read_corpus
    from cinesense.data.dataset import load_dataset, prepare_reviews
    from cinesense.model.baseline import TfidfBaseline
    from cinesense.model.behaviour import run_behaviour_tests
    from cinesense.model.evaluate import evaluate
    from cinesense.model.onnx_predict import OnnxPredictor
    from cinesense.model.report import bundle_report

    if (bundle is None) == (registry is None):
        raise DataError("Give either a bundle directory or a registry reference, not both.")
    if registry is not None:
        from cinesense.registry import load_predictor

        predictor, version = load_predictor(settings, registry, settings.num_threads)
        reference = f"registry {registry} (version {version})"
    else:
        predictor, reference = OnnxPredictor.from_bundle(bundle), str(bundle)  # type: ignore[arg-type]
    has_dataset = (Path(dataset_dir) / "manifest.json").exists()
    if test_file is not None:
        test = prepare_reviews(read_corpus(test_file), settings.data)[0]
    elif has_dataset:
        test = load_dataset(dataset_dir)["test"]
    else:
        raise DataError(
            f"No reviews to score: give --data FILE (a labelled review file) or build a "
            f"dataset at {dataset_dir} first."
        )
    seed = settings.data.seed
    report = bundle_report(predictor, test, seed, reference)
    if with_baseline and has_dataset:
        baseline = TfidfBaseline.fit(load_dataset(dataset_dir)["train"], seed=seed).scorer()
        report["baseline"] = {
            **evaluate(baseline, test, seed),
            "behaviour": run_behaviour_tests(baseline.probability_positive),
        }
    if report_path is not None:
        Path(report_path).write_text(json.dumps(report, ensure_ascii=False, indent=2))
    return report


def quantize_sentiment(
    settings: Settings,
    model_dir: Path,
    dataset_dir: Path,
    target: Path,
    max_accuracy_loss: float = 0.005,
) -> dict:
    """Export, optimize, INT8-quantize and check the model; the serving bundle's manifest."""
    from cinesense.data.dataset import load_dataset
    from cinesense.model.export import build_serving_bundle

    data = load_dataset(dataset_dir)
    return build_serving_bundle(
        model_dir,
        target,
        data["test"],
        max_accuracy_loss=max_accuracy_loss,
        seed=settings.data.seed,
    )


def track_training_run(
    settings: Settings, model_dir: Path, report_path: Path, dataset_dir: Path
) -> str:
    """Log the training run in MLflow (before quantization); its run id."""
    from cinesense.data.dataset import load_dataset
    from cinesense.tracking import record_training_run

    directory = Path(dataset_dir)
    return record_training_run(
        settings, model_dir, report_path, load_dataset(directory), directory.resolve().as_uri()
    )


def register_version(
    settings: Settings,
    run_id: str | None,
    model_dir: Path,
    bundle_dir: Path,
    report_path: Path,
    dataset_dir: Path,
) -> dict:
    """The one way a trained model is registered (CLI and DAGs): the serving bundle becomes
    a new version of run ``run_id`` (alias challenger) and the training watermark moves to
    the crawled reviews this version has seen.

    The bundle is verified once, first. With ``run_id`` ``None`` (the CLI, which has no
    earlier step for it) the training run is logged here, after that check.
    """
    from cinesense.data.dataset import load_dataset
    from cinesense.model.onnx_predict import verify_bundle
    from cinesense.tracking import record_training_run, register_trained_bundle

    bundle = verify_bundle(bundle_dir)
    directory = Path(dataset_dir)
    dataset = load_dataset(directory)
    if run_id is None:
        run_id = record_training_run(
            settings, model_dir, report_path, dataset, directory.resolve().as_uri()
        )
    result = register_trained_bundle(
        settings, run_id, model_dir, bundle_dir, report_path, dataset, bundle
    )
    crawled_until = corpus_info(dataset_dir).get("crawled_until")
    if crawled_until:
        open_store(settings).put_bytes(
            TRAINING_WATERMARK,
            json.dumps(
                {
                    "crawled_until": crawled_until,
                    "version": result["version"],
                    "at": datetime.now(UTC).isoformat(),
                }
            ).encode(),
        )
    return result


def gate_version(
    settings: Settings, version: str, dataset_dir: Path, margin: float | None = None
) -> GateDecision:
    """Gate ``version`` against the champion on the dataset's test movies; promote if it
    wins. The decision is recorded on the version either way."""
    from cinesense.data.dataset import load_dataset
    from cinesense.gate import baseline_accuracy_of, gate_set, promote

    evaluation = gate_set(load_dataset(dataset_dir)["test"], settings.data.seed)
    return promote(settings, version, evaluation, baseline_accuracy_of(settings, version), margin)


def training_message(decision: dict[str, Any], registered: dict[str, Any], run: str) -> str:
    """One short paragraph for people: did the new version become champion, and why."""
    version = decision["version"]
    if decision["promoted"]:
        headline = f"cinesense: version {version} is the new champion"
    else:
        champion = decision.get("champion_version")
        holder = f"champion stays v{champion}" if champion else "there is no champion yet"
        headline = f"cinesense: version {version} was not promoted ({holder})"
    details = [
        f"why: {decision['reason']}",
        f"test accuracy {registered.get('test_accuracy', '?')}, "
        f"TF-IDF baseline {registered.get('baseline_accuracy', '?')}, "
        f"served as {registered.get('served_format', '?')}",
        f"base model: {registered.get('base_model', '?')}; MLflow run {registered.get('run_id')}",
        f"Airflow run: {run}",
    ]
    return headline + "\n" + "\n".join(f"• {line}" for line in details)


def new_labelled_reviews(settings: Settings, store: ObjectStore | None = None) -> dict[str, Any]:
    """Crawled reviews that may train models, carry a label (a rating outside the neutral
    band, or a mapped verdict) and arrived after the data of the last registered version."""
    from cinesense.crawl.jobs import read_reviews
    from cinesense.data.dataset import NEUTRAL, label_for_rating

    objects = store or open_store(settings)
    watermark = None
    if objects.exists(TRAINING_WATERMARK):
        watermark = json.loads(objects.get_bytes(TRAINING_WATERMARK))["crawled_until"]
    frame = read_reviews(settings, training_only=True, store=objects)
    labelled = (label_for_rating(frame["rating"], settings.data) != NEUTRAL) | frame[
        "label"
    ].notna()
    if watermark is not None:
        import pandas as pd

        labelled &= frame["crawled_at"] > pd.Timestamp(watermark)
    return {"new_labelled": int(labelled.sum()), "since": watermark}


def should_train(
    settings: Settings,
    trigger: str,
    threshold: int,
    store: ObjectStore | None = None,
) -> tuple[bool, str]:
    """Whether a training run should go on. Runs started by new reviews (``trigger``
    ``asset_triggered``) need ``threshold`` new labelled reviews; scheduled and manual
    runs always train."""
    if trigger != "asset_triggered":
        return True, f"{trigger} run: training"
    found = new_labelled_reviews(settings, store)
    count, since = found["new_labelled"], found["since"] or "the start"
    if count >= threshold:
        return True, f"{count} new labelled reviews since {since} (threshold {threshold})"
    return False, f"only {count} new labelled reviews since {since}; waiting for {threshold}"
