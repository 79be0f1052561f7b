"""One evaluation report: the model and the TF-IDF baseline on the same test movies.

The model is either a fine-tuned directory (PyTorch) or a serving bundle (ONNX Runtime
and tokenizers only, so the live model can be checked where torch is not installed).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from cinesense.config import Settings
from cinesense.data.dataset import Dataset
from cinesense.model.baseline import TfidfBaseline
from cinesense.model.behaviour import run_behaviour_tests
from cinesense.model.evaluate import ReviewScorer, evaluate
from cinesense.model.heads import TRAINING_MANIFEST
from cinesense.model.onnx_predict import OnnxPredictor

if TYPE_CHECKING:
    from cinesense.model.predict import TorchPredictor


def model_scorer(predictor: TorchPredictor, batch_size: int) -> ReviewScorer:
    def rating(texts: list[str]):
        assert predictor.calibration is not None  # from_directory always loads one
        scores = predictor.scores(texts, batch_size)
        return predictor.calibration.rate(scores.logits, scores.probability_positive)

    return ReviewScorer(
        "model", lambda texts: predictor.positive_probability(texts, batch_size), rating
    )


def bundle_scorer(predictor: OnnxPredictor, batch_size: int = 64) -> ReviewScorer:
    """The served model, scored exactly as the service scores it."""

    def probability(texts: list[str]) -> np.ndarray:
        return np.array([p.probability_positive for p in predictor.predict(texts, batch_size)])

    def rating(texts: list[str]) -> np.ndarray:
        return np.array([p.rating for p in predictor.predict(texts, batch_size)])

    return ReviewScorer("model", probability, rating)


def bundle_report(
    predictor: OnnxPredictor, test: pd.DataFrame, seed: int, reference: str
) -> dict[str, object]:
    """The model's part of the report for a serving bundle on labelled reviews ``test``."""
    scorer = bundle_scorer(predictor)
    return {
        "model_directory": reference,
        "quantization": predictor.quantization,
        "bundle_data_fingerprint": predictor.manifest.get("data_fingerprint"),
        "model": {
            **evaluate(scorer, test, seed),
            "behaviour": run_behaviour_tests(scorer.probability_positive),
        },
    }


def evaluation_report(
    model_dir: Path,
    dataset: Dataset,
    settings: Settings,
    with_baseline: bool = True,
    test: pd.DataFrame | None = None,
) -> dict[str, object]:
    """Score the model (and the baseline, trained on the dataset's train split) on the
    dataset's test split, or on ``test`` — reviews from another file — when given."""
    from cinesense.model.predict import TorchPredictor

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
