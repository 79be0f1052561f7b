"""One evaluation report: the model and the TF-IDF baseline on the same test movies."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from cinesense.config import Settings
from cinesense.data.dataset import Dataset
from cinesense.model.baseline import TfidfBaseline
from cinesense.model.behaviour import run_behaviour_tests
from cinesense.model.evaluate import ReviewScorer, evaluate
from cinesense.model.finetune import TRAINING_MANIFEST
from cinesense.model.predict import TorchPredictor


def model_scorer(predictor: TorchPredictor, batch_size: int) -> ReviewScorer:
    def rating(texts: list[str]):
        assert predictor.calibration is not None  # from_directory always loads one
        return predictor.calibration(predictor.scores(texts, batch_size).expected_rating)

    return ReviewScorer(
        "model", lambda texts: predictor.positive_probability(texts, batch_size), rating
    )


def evaluation_report(
    model_dir: Path,
    dataset: Dataset,
    settings: Settings,
    with_baseline: bool = True,
    test: pd.DataFrame | None = None,
) -> dict[str, object]:
    """Score the model (and the baseline, trained on the dataset's train split) on the
    dataset's test split, or on ``test`` — reviews from another file — when given."""
    test = dataset["test"] if test is None else test
    predictor = TorchPredictor.from_directory(model_dir)
    scorer = model_scorer(predictor, settings.train.eval_batch_size)
    seed = settings.data.seed
    report: dict[str, object] = {
        "model_directory": str(model_dir),
        "dataset_fingerprint": dataset.manifest.fingerprint,
        "model": {
            **evaluate(scorer, test, seed),
            "behaviour": run_behaviour_tests(scorer.probability_positive),
        },
    }
    manifest = Path(model_dir) / TRAINING_MANIFEST
    if manifest.exists():
        trained_on = json.loads(manifest.read_text()).get("dataset_fingerprint")
        report["trained_on_this_dataset"] = trained_on == dataset.manifest.fingerprint
    if with_baseline:
        baseline = TfidfBaseline.fit(dataset["train"], seed=seed).scorer()
        report["baseline"] = {
            **evaluate(baseline, test, seed),
            "behaviour": run_behaviour_tests(baseline.probability_positive),
        }
    return report
