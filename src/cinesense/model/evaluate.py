"""Metrics for a sentiment model, the TF-IDF baseline beside it, and one report.

Binary metrics (accuracy, macro-F1, ROC-AUC, confusion matrix, expected calibration
error) are computed on a class-balanced subset of the test split's labelled reviews — the
NSMC convention, so 50% is chance and figures compare with published ones; accuracy on
the natural class mix is reported too. Rating metrics (MAE, Spearman) use every rated
test review, ratings 5–8 included.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import spearmanr
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, roc_auc_score

from cinesense.data.dataset import NEUTRAL, balanced_binary


@dataclass(frozen=True)
class ReviewScorer:
    """Anything that maps texts to P(positive) and a 1–10 rating."""

    name: str
    probability_positive: Callable[[list[str]], np.ndarray]
    rating: Callable[[list[str]], np.ndarray]


def expected_calibration_error(
    probability: np.ndarray, labels: np.ndarray, bins: int = 10
) -> float:
    """ECE of the predicted class's confidence, equal-width bins."""
    predicted = (probability >= 0.5).astype(int)
    confidence = np.where(predicted == 1, probability, 1 - probability)
    correct = (predicted == labels).astype(float)
    edges = np.linspace(0.5, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1]), 0, bins - 1)
    error = 0.0
    for b in range(bins):
        members = which == b
        if members.any():
            error += members.mean() * abs(correct[members].mean() - confidence[members].mean())
    return float(error)


def binary_metrics(probability: np.ndarray, labels: np.ndarray) -> dict[str, object]:
    predicted = (probability >= 0.5).astype(int)
    return {
        "accuracy": float(accuracy_score(labels, predicted)),
        "macro_f1": float(f1_score(labels, predicted, average="macro")),
        "roc_auc": float(roc_auc_score(labels, probability)) if len(set(labels)) == 2 else None,
        "ece": expected_calibration_error(probability, labels),
        "confusion_matrix": confusion_matrix(labels, predicted, labels=[0, 1]).tolist(),
    }


def rating_metrics(predicted: np.ndarray, ratings: np.ndarray) -> dict[str, float]:
    return {
        "rating_mae": float(np.mean(np.abs(predicted - ratings))),
        "rating_spearman": float(spearmanr(predicted, ratings).statistic),
    }


def evaluate(scorer: ReviewScorer, test: pd.DataFrame, seed: int) -> dict[str, object]:
    """Every metric of ``scorer`` on ``test`` (a dataset split)."""
    labelled = test[test["label"] != NEUTRAL]
    balanced = balanced_binary(test, seed)
    probability = pd.Series(
        scorer.probability_positive(list(labelled["text"])), index=labelled.index
    )
    metrics: dict[str, object] = binary_metrics(
        probability[balanced.index].to_numpy(), balanced["label"].to_numpy()
    )
    natural = (probability >= 0.5).astype(int) == labelled["label"]
    metrics["accuracy_natural_mix"] = float(natural.mean())
    rated = test[test["rating"].notna()]
    if len(rated):
        metrics.update(
            rating_metrics(scorer.rating(list(rated["text"])), rated["rating"].to_numpy(float))
        )
    metrics.update(
        {
            "test_reviews": len(test),
            "test_balanced_reviews": len(balanced),
            "test_rated_reviews": len(rated),
            "test_movies": int(test.loc[test["movie_id"] != "", "movie_id"].nunique()),
        }
    )
    return metrics
