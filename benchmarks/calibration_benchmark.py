"""Calibration benchmark: a bundle's label decision and rating read afresh, its model kept.

    python benchmarks/calibration_benchmark.py [--bundle src/cinesense/default_model] [--write]

Scores every validation review (labelled or rated) with the bundle, fits the label map's
``positive_offset`` on the labelled ones (model/balance.py: the lowest class-balanced log
loss) and then the rating calibration read at it (model/rating.py), writes the
recalibrated copy to --work-dir/recalibrated, and scores both bundles on the test movies as
`cinesense evaluate --bundle` scores them. Only validation chooses; the test split is read
to report. With --write the bundle itself takes the refit (a shipped bundle's manifest
takes the new figures and the rebuild command). Needs the dataset of train_benchmark.py in
--work-dir. Writes the ``calibration`` entry of benchmarks/results.json and a section of
benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from cinesense.config import Settings
from cinesense.data.dataset import NEUTRAL, load_dataset
from cinesense.model.balance import fit_decision, fit_rating
from cinesense.model.heads import LabelMap, positive_probability
from cinesense.model.loop import set_threads
from cinesense.model.onnx_predict import OnnxPredictor
from cinesense.model.rating import RatingCalibration
from cinesense.model.shipping import recalibrate_bundle
from cinesense.model.stacking import validation_sample
from cinesense.model.wide import binary_accuracy
from cinesense.pipelines.train import evaluate_served

sys.path.insert(0, str(Path(__file__).resolve().parent))
from rating_benchmark import _shown
from results import update_markdown, write_entry
from train_benchmark import DEFAULT_MODEL, SHIPPED_FIGURES

log = logging.getLogger("calibration_benchmark")
COMMAND = "python benchmarks/calibration_benchmark.py --write"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work-dir", type=Path, default=Path.home() / ".cache/cinesense-bench")
    parser.add_argument("--bundle", type=Path, default=DEFAULT_MODEL)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--write", action="store_true", help="give the bundle the refit")
    return parser.parse_args()


def score(predictor: OnnxPredictor, split: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
    """The split's labelled or rated reviews and their logits."""
    usable = split[split["rating"].notna() | (split["label"] != NEUTRAL)]
    started = time.monotonic()
    logits = predictor.logits(list(usable["text"])).astype(np.float64)
    log.info("%d reviews in %.1f min", len(usable), (time.monotonic() - started) / 60)
    return usable, logits


def fitted_on(usable: pd.DataFrame) -> dict[str, object]:
    """What the refit records in the bundle's manifest."""
    labelled = int((usable["label"] != NEUTRAL).sum())
    rated = int(usable["rating"].notna().sum())
    return {
        "fitted_on": f"{labelled} labelled and {rated} rated validation reviews",
        "command": COMMAND,
        "date": time.strftime("%Y-%m-%d"),
    }


def balanced_figures(
    usable: pd.DataFrame, logits: np.ndarray, label_map: LabelMap, calibration: RatingCalibration
) -> tuple[float, float]:
    """Mean recall of the two classes over every labelled review, and the rating MAE."""
    probability = positive_probability(logits, label_map)
    labelled = (usable["label"] != NEUTRAL).to_numpy()
    labels = usable["label"].to_numpy()[labelled]
    positive = probability[labelled] >= 0.5
    recall = (positive[labels == 1].mean() + (~positive[labels == 0]).mean()) / 2
    rated = usable["rating"].notna().to_numpy()
    rating = calibration.rate(logits[rated], probability[rated])
    error = np.abs(rating - usable["rating"].to_numpy(float)[rated]).mean()
    return round(float(recall), 4), round(float(error), 3)


def sweep(scored: dict, label_map: LabelMap, fitted: float) -> list[dict[str, float]]:
    """Offsets from 0 to the fitted one, each with its rating calibration refitted on
    validation: the trade between a balanced label and the rating."""
    rows = []
    for offset in sorted({0.0, 0.1, 0.2, 0.3, fitted}):
        if offset > max(fitted, 0.0):
            continue
        shifted = replace(label_map, positive_offset=offset)
        calibration = fit_rating(*scored["validation"], shifted)
        row: dict[str, float] = {"offset": offset}
        for split in ("validation", "test"):
            recall, mae = balanced_figures(*scored[split], shifted, calibration)
            row |= {f"{split}_balanced_accuracy": recall, f"{split}_rating_mae": mae}
        rows.append(row)
    return rows


def figures(model: dict) -> dict[str, float]:
    """Headline figures of an evaluation report; recall per class on the balanced test."""
    (true_negative, false_positive), (false_negative, true_positive) = model["confusion_matrix"]
    return {
        "accuracy": round(model["accuracy"], 4),
        "macro_f1": round(model["macro_f1"], 4),
        "recall_negative": round(true_negative / (true_negative + false_positive), 4),
        "recall_positive": round(true_positive / (true_positive + false_negative), 4),
        "accuracy_natural_mix": round(model["accuracy_natural_mix"], 4),
        "roc_auc": round(model["roc_auc"], 4),
        "ece": round(model["ece"], 4),
        "rating_mae": round(model["rating_mae"], 3),
        "label_rating_contradictions": round(model["label_rating_contradictions"], 4),
        "behaviour_pass_rate": round(model["behaviour"]["pass_rate"], 4),
    }


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    args = parse_args()
    set_threads(args.threads)
    dataset_dir = args.work_dir / "dataset"
    predictor = OnnxPredictor.from_bundle(args.bundle, threads=args.threads)
    dataset = load_dataset(dataset_dir)
    scored = {split: score(predictor, dataset[split]) for split in ("validation", "test")}
    label_map, calibration = fit_decision(*scored["validation"], predictor.label_map)
    record = fitted_on(scored["validation"][0])
    recalibrated = args.work_dir / "recalibrated"
    shutil.rmtree(recalibrated, ignore_errors=True)
    shutil.copytree(args.bundle, recalibrated)
    recalibrate_bundle(recalibrated, label_map, calibration, record)
    settings = Settings()
    reports = {
        name: evaluate_served(settings, dataset_dir, bundle=bundle, with_baseline=False)["model"]
        for name, bundle in (("before", args.bundle), ("after", recalibrated))
    }
    before, after = (figures(reports[name]) for name in ("before", "after"))
    sample = validation_sample(dataset["validation"])
    # scored alone, as stacking scores it: dynamic INT8 depends on the batch a review is in
    sample_logits = predictor.logits(list(sample["text"])).astype(np.float64)
    for shown, label in ((before, predictor.label_map), (after, label_map)):
        accuracy = binary_accuracy(sample_logits, sample["label"].to_numpy(), label)
        shown["validation_accuracy"] = round(float(accuracy), 4)
    if args.write:
        shipped = {name: after[name] for name in SHIPPED_FIGURES if name in after}
        record["validation_sample_accuracy"] = after["validation_accuracy"]
        record["validation_sample_accuracy_before"] = before["validation_accuracy"]
        recalibrate_bundle(args.bundle, label_map, calibration, record, shipped)
        log.info("wrote the refit into %s", args.bundle)
    metrics: dict[str, float | int | str] = {
        "positive_offset_before": predictor.label_map.positive_offset,
        "positive_offset": label_map.positive_offset,
        "quantile": calibration.quantile,
        "confidence_slope": calibration.confidence_slope,
        "fitted_on": str(record["fitted_on"]),
        "test_reviews": int(reports["after"]["test_balanced_reviews"]),
        **{f"before_{name}": value for name, value in before.items()},
        **{f"after_{name}": value for name, value in after.items()},
    }
    trade = sweep(scored, predictor.label_map, label_map.positive_offset)
    metrics["offset_sweep"] = trade  # type: ignore[assignment]
    write_entry("calibration", metrics, threads=args.threads)
    update_markdown("calibration", markdown(args, metrics, before, after, trade))


def markdown(args, metrics: dict, before: dict, after: dict, trade: list[dict]) -> list[str]:
    rows = [f"| {name.replace('_', ' ')} | {before[name]} | {after[name]} |" for name in before]
    return [
        "## calibration — the label's decision offset and the rating, refitted on validation",
        "",
        f"Date: {time.strftime('%Y-%m-%d')}. Command: "
        f"`{' '.join(['python benchmarks/calibration_benchmark.py', *sys.argv[1:]])}` (bundle "
        f"{_shown(args.bundle)}). Fitted on "
        f"{metrics['fitted_on']}: positive offset {metrics['positive_offset_before']} -> "
        f"{metrics['positive_offset']} (model/balance.py), rating quantile "
        f"{metrics['quantile']} {metrics['confidence_slope']:+} × abs(P(positive) − 0.5) "
        "(model/rating.py). Test movies, scored as `cinesense evaluate --bundle` scores them "
        f"({metrics['test_reviews']} class-balanced labelled reviews; recall per class on "
        "them; the natural mix is every labelled test review).",
        "",
        "| figure | before | after |",
        "|---|---|---|",
        *rows,
        "",
        "The model is the same; only the label's decision offset and the rating calibration "
        "changed"
        + (" (written into the bundle, --write)." if args.write else " (not written).")
        + " Validation accuracy is the train benchmark's class-balanced validation sample "
        "(the figure a new model must beat to ship).",
        "",
        "The trade, offset by offset (each with its rating calibration refitted on "
        "validation; accuracy here is the mean recall of the two classes over every "
        "labelled review):",
        "",
        "| offset | validation accuracy | validation rating MAE | test accuracy | "
        "test rating MAE |",
        "|---|---|---|---|---|",
        *(
            f"| {row['offset']} | {row['validation_balanced_accuracy']} | "
            f"{row['validation_rating_mae']} | {row['test_balanced_accuracy']} | "
            f"{row['test_rating_mae']} |"
            for row in trade
        ),
        "",
    ]


if __name__ == "__main__":
    main()
