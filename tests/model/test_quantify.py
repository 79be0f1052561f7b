"""A movie's share of positive reviews estimated from its labels (model/quantify.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from cinesense.model.quantify import estimated_share, estimated_share_of


def test_the_estimate_undoes_the_labels_errors() -> None:
    """Reviews 80 % positive, labelled with recall 0.88 of each class: 72.8 % of the labels
    say positive, and the estimate gives back 80 %."""
    rng = np.random.default_rng(0)
    positive = rng.random(200_000) < 0.8
    right = rng.random(200_000) < 0.88
    labelled_positive = float(np.where(right, positive, ~positive).mean())
    assert labelled_positive == pytest.approx(0.728, abs=0.005)
    assert estimated_share(labelled_positive, (0.88, 0.88)) == pytest.approx(0.8, abs=0.005)


def test_a_perfect_model_keeps_its_share() -> None:
    assert estimated_share(0.37, (1.0, 1.0)) == pytest.approx(0.37)


def test_the_estimate_stays_a_share() -> None:
    assert estimated_share(0.99, (0.9, 0.8)) == 1.0
    assert estimated_share(0.02, (0.9, 0.8)) == 0.0


def test_no_estimate_without_a_usable_recall() -> None:
    assert estimated_share(0.6, None) is None
    assert estimated_share(0.6, (math.nan, 0.9)) is None
    assert estimated_share(0.6, (0.55, 0.6)) is None  # barely better than chance


def test_probabilities_are_labelled_positive_from_one_half() -> None:
    probabilities = [0.1, 0.5, 0.7, 0.2]  # half labelled positive
    assert estimated_share_of(probabilities, (1.0, 1.0)) == pytest.approx(0.5)
    assert estimated_share_of(probabilities, (0.9, 0.9)) == pytest.approx(0.5)
    assert estimated_share_of([], (0.9, 0.9)) is None
