"""The label's decision at equal class priors (model/balance.py)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from cinesense.model.balance import balanced_label_map, balanced_log_loss, fit_positive_offset
from cinesense.model.heads import LABEL_MAP_FILE, LabelMap, positive_probability


def _logits_with_log_odds(log_odds: np.ndarray) -> np.ndarray:
    """Rating logits whose positive-vs-negative log-odds are ``log_odds`` (rating 10 vs 1)."""
    logits = np.full((len(log_odds), 10), -30.0)
    logits[:, 0] = 0.0
    logits[:, 9] = log_odds
    return logits


def test_a_prior_leaning_positive_is_taken_out() -> None:
    """Scores that are calibrated at a 3:1 prior get the offset log 3 back."""
    rng = np.random.default_rng(0)
    labels = (rng.random(20000) < 0.5).astype(int)
    balanced_odds = rng.normal(np.where(labels == 1, 1.5, -1.5), 1.7320508)  # calibrated at 1:1
    logits = _logits_with_log_odds(balanced_odds + np.log(3.0))
    offset = fit_positive_offset(logits, labels, LabelMap())
    assert offset == pytest.approx(np.log(3.0), abs=0.1)
    shifted = LabelMap(positive_offset=offset)
    recall = [
        ((positive_probability(logits, shifted) >= 0.5) == labels)[labels == k].mean()
        for k in (0, 1)
    ]
    assert abs(recall[0] - recall[1]) < 0.02


def test_the_offset_is_where_the_balanced_loss_is_lowest() -> None:
    rng = np.random.default_rng(1)
    labels = (rng.random(3000) < 0.25).astype(int)
    logits = _logits_with_log_odds(rng.normal(np.where(labels == 1, 1.0, -1.0), 1.5))
    offset = fit_positive_offset(logits, labels, LabelMap())
    odds = logits[:, 9] - logits[:, 0]
    best = balanced_log_loss(odds, labels, offset)
    for other in (offset - 0.2, offset + 0.2, 0.0):
        assert best <= balanced_log_loss(odds, labels, other)


def test_too_few_reviews_of_a_class_keep_even_odds() -> None:
    logits = _logits_with_log_odds(np.linspace(-2, 2, 50))
    labels = np.r_[np.zeros(45, int), np.ones(5, int)]
    assert balanced_label_map(logits, labels, LabelMap(positive_offset=0.4)).positive_offset == 0


def test_the_offset_travels_in_the_label_map_file(tmp_path) -> None:
    LabelMap(positive_offset=0.425).save(tmp_path)
    assert LabelMap.load(tmp_path).positive_offset == 0.425
    data = json.loads((tmp_path / LABEL_MAP_FILE).read_text())
    del data["positive_offset"]  # a label map written before 2026-12-07
    (tmp_path / LABEL_MAP_FILE).write_text(json.dumps(data))
    assert LabelMap.load(tmp_path) == LabelMap()


def test_the_offset_moves_the_probability() -> None:
    logits = _logits_with_log_odds(np.array([0.0, 1.0]))
    assert positive_probability(logits, LabelMap()) == pytest.approx([0.5, 1 / (1 + np.e**-1)])
    assert positive_probability(logits, LabelMap(positive_offset=1.0)) == pytest.approx(
        [1 / (1 + np.e), 0.5]
    )


def test_the_label_map_keeps_each_class_recall_at_its_offset(tmp_path) -> None:
    rng = np.random.default_rng(2)
    labels = (rng.random(4000) < 0.5).astype(int)
    logits = _logits_with_log_odds(rng.normal(np.where(labels == 1, 1.5, -1.5), 1.5) + 1.0)
    fitted = balanced_label_map(logits, labels, LabelMap())
    predicted = positive_probability(logits, fitted) >= 0.5
    expected = tuple(round(float((predicted == labels)[labels == k].mean()), 4) for k in (0, 1))
    assert fitted.validation_recall == expected
    fitted.save(tmp_path)
    assert LabelMap.load(tmp_path).validation_recall == expected
    few = balanced_label_map(logits[:30], labels[:30], fitted)
    assert few.validation_recall is None  # too few reviews of each class to measure it
