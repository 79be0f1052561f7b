"""Metrics for a sentiment model, the TF-IDF baseline beside it, and one report.

Binary metrics (accuracy, macro-F1, ROC-AUC, confusion matrix, expected calibration
error) are computed on a class-balanced subset of the test split's labelled reviews — the
NSMC convention, so 50% is chance and figures compare with published ones; accuracy on
the natural class mix is reported too. Rating metrics (MAE, Spearman) use every rated
test review, ratings 5–8 included. For the tracking plots the report also carries a
reliability table (P(positive) bins against the observed share of positives) and the
most confident wrong predictions.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import spearmanr
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, roc_auc_score

from cinesense.data.dataset import NEUTRAL, balanced_binary

WORST_ERRORS = 20  # most confident wrong predictions kept in a report


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


def reliability_table(
    probability: np.ndarray, labels: np.ndarray, bins: int = 10
) -> list[dict[str, float]]:
    """Equal-width bins of P(positive): mean prediction against the share of positives."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(probability, edges[1:-1]), 0, bins - 1)
    rows = []
    for b in range(bins):
        members = which == b
        if members.any():
            rows.append(
                {
                    "low": float(edges[b]),
                    "high": float(edges[b + 1]),
                    "mean_probability": float(probability[members].mean()),
                    "fraction_positive": float(labels[members].mean()),
                    "count": int(members.sum()),
                }
            )
    return rows


def worst_errors(
    labelled: pd.DataFrame,
    probability: pd.Series,
    predicted_rating: pd.Series,
    limit: int = WORST_ERRORS,
    names: tuple[str, str] = ("negative", "positive"),
) -> list[dict[str, object]]:
    """The ``limit`` most confident wrong predictions among ``labelled`` reviews."""
    predicted = (probability >= 0.5).astype(int)
    wrong = labelled.index[(predicted != labelled["label"]).to_numpy()]
    confidence = np.maximum(probability[wrong], 1 - probability[wrong])
    rows: list[dict[str, object]] = []
    for index in confidence.sort_values(ascending=False, kind="stable").index[:limit]:
        rating = labelled.at[index, "rating"] if "rating" in labelled else None
        estimate = predicted_rating.get(index)
        rows.append(
            {
                "text": str(labelled.at[index, "text"]),
                "label": names[int(labelled.at[index, "label"])],
                "rating": None if rating is None or pd.isna(rating) else float(rating),
                "predicted_label": names[int(predicted[index])],
                "probability_positive": round(float(probability[index]), 4),
                "predicted_rating": None if estimate is None else round(float(estimate), 1),
            }
        )
    return rows


def rating_metrics(predicted: np.ndarray, ratings: np.ndarray) -> dict[str, float]:
    return {
        "rating_mae": float(np.mean(np.abs(predicted - ratings))),
        "rating_spearman": float(spearmanr(predicted, ratings).statistic),
    }


def label_rating_contradictions(probability: np.ndarray, rating: np.ndarray) -> float:
    """Share of reviews whose label and rating disagree: ``negative`` with a rating of 6 or
    more, or ``positive`` with 5 or less."""
    positive = probability >= 0.5
    contradicts = (positive & (rating <= 5)) | (~positive & (rating >= 6))
    return float(contradicts.mean()) if len(contradicts) else 0.0


def evaluate(scorer: ReviewScorer, test: pd.DataFrame, seed: int) -> dict[str, object]:
    """Every metric of ``scorer`` on ``test`` (a dataset split)."""
    labelled = test[test["label"] != NEUTRAL]
    balanced = balanced_binary(test, seed)
    scored = test[(test["label"] != NEUTRAL) | test["rating"].notna()]
    probability = pd.Series(scorer.probability_positive(list(scored["text"])), index=scored.index)
    metrics: dict[str, object] = binary_metrics(
        probability[balanced.index].to_numpy(), balanced["label"].to_numpy()
    )
    natural = (probability[labelled.index] >= 0.5).astype(int) == labelled["label"]
    metrics["accuracy_natural_mix"] = float(natural.mean())
    rated = test[test["rating"].notna()]
    predicted_rating = pd.Series(dtype=float)
    if len(rated):
        predicted_rating = pd.Series(scorer.rating(list(rated["text"])), index=rated.index)
        metrics.update(
            rating_metrics(predicted_rating.to_numpy(float), rated["rating"].to_numpy(float))
        )
        metrics["label_rating_contradictions"] = label_rating_contradictions(
            probability[rated.index].to_numpy(), predicted_rating.to_numpy(float)
        )
    metrics["reliability"] = reliability_table(
        probability[balanced.index].to_numpy(), balanced["label"].to_numpy()
    )
    metrics["worst_errors"] = worst_errors(labelled, probability[labelled.index], predicted_rating)
    metrics.update(
        {
            "test_reviews": len(test),
            "test_balanced_reviews": len(balanced),
            "test_rated_reviews": len(rated),
            "test_movies": int(test.loc[test["movie_id"] != "", "movie_id"].nunique()),
        }
    )
    return metrics
