import json

import numpy as np
import pytest
import torch

from cinesense.errors import ModelError
from cinesense.model.finetune import binary_logits, review_loss
from cinesense.model.heads import LabelMap, expected_rating, positive_probability
from cinesense.model.rating import CALIBRATION_FILE, RatingCalibration, ScoreCalibration


def test_numpy_and_torch_read_the_same_binary_probability() -> None:
    logits = np.random.default_rng(0).normal(size=(5, 10))
    label_map = LabelMap()
    numpy_p = positive_probability(logits, label_map)
    torch_p = torch.softmax(binary_logits(torch.tensor(logits), label_map), dim=-1)[:, 1]
    np.testing.assert_allclose(numpy_p, torch_p.numpy(), rtol=1e-6)


def test_neutral_mass_does_not_move_the_sentiment() -> None:
    logits = np.zeros((2, 10))
    logits[1, 4:8] = 5.0  # much more mass on ratings 5-8
    p = positive_probability(logits, LabelMap())
    assert p[0] == pytest.approx(p[1]) == pytest.approx(2 / 6)  # 2 positive vs 4 negative ratings


def test_expected_rating() -> None:
    logits = np.full((1, 10), -50.0)
    logits[0, 9] = 50.0
    assert expected_rating(logits)[0] == pytest.approx(10.0)


def test_label_map_round_trip(tmp_path) -> None:
    LabelMap(3, 8).save(tmp_path)
    assert LabelMap.load(tmp_path) == LabelMap(3, 8)


def test_loss_ignores_missing_targets() -> None:
    logits = torch.zeros(3, 10, requires_grad=True)
    ratings = torch.tensor([-100, -100, -100])
    labels = torch.tensor([-100, -100, -100])
    loss = review_loss(logits, ratings, labels, torch.ones(2), LabelMap())
    assert loss.item() == 0.0


def _logits_for(ratings: np.ndarray, noise: float, rng) -> np.ndarray:
    """Rating logits peaked near each true rating (a model that is roughly right)."""
    grid = np.arange(1, 11)
    centre = ratings[:, None] + rng.normal(scale=noise, size=(len(ratings), 1))
    return -np.abs(grid[None, :] - centre)


def test_the_rating_is_a_quantile_of_the_rating_distribution(tmp_path) -> None:
    logits = np.log(np.array([[0.3, 0, 0, 0, 0, 0, 0, 0, 0.3, 0.4]]) + 1e-12)
    unsure = np.array([0.5])
    assert RatingCalibration(0.5)(logits, unsure).tolist() == [9.0]
    assert RatingCalibration(0.25)(logits, unsure).tolist() == [1.0]
    assert RatingCalibration(0.65)(logits, unsure).tolist() == [10.0]
    calibration = RatingCalibration(0.55, -0.2)
    calibration.save(tmp_path)
    assert RatingCalibration.load(tmp_path) == calibration


def test_the_quantile_moves_with_the_labels_confidence() -> None:
    logits = np.log(np.array([[0.3, 0, 0, 0, 0, 0, 0, 0, 0.3, 0.4]] * 2) + 1e-12)
    moving = RatingCalibration(0.65, -0.2)  # 0.65 when unsure, 0.55 when sure
    assert moving(logits, np.array([0.5, 1.0])).tolist() == [10.0, 9.0]


def test_rating_files_without_a_slope_rate_as_before(tmp_path) -> None:
    (tmp_path / CALIBRATION_FILE).write_text(json.dumps({"method": "quantile", "quantile": 0.6}))
    assert RatingCalibration.load(tmp_path) == RatingCalibration(0.6, 0.0)


def test_fitting_chooses_the_quantile_with_the_lowest_error() -> None:
    rng = np.random.default_rng(0)
    ratings = rng.integers(1, 11, size=2000).astype(float)
    logits = _logits_for(ratings, 1.5, rng)
    probability = (ratings >= 6).astype(float)
    fitted = RatingCalibration.fit(logits, ratings, probability)
    error = np.abs(fitted.rate(logits, probability) - ratings).mean()
    for q in (0.3, 0.5, 0.7):
        for slope in (-0.4, 0.0, 0.2):
            rated = RatingCalibration(q, slope).rate(logits, probability)
            assert error <= np.abs(rated - ratings).mean()
    assert error < np.abs(expected_rating(logits) - ratings).mean()


def test_rating_files_of_earlier_versions_still_rate(tmp_path) -> None:
    (tmp_path / CALIBRATION_FILE).write_text(
        json.dumps(
            {"method": "median rating per score quantile", "scores": [1, 10], "ratings": [2, 9]}
        )
    )
    legacy = RatingCalibration.load(tmp_path)
    assert isinstance(legacy, ScoreCalibration)
    logits = np.log(np.eye(10)[[0, 9]] + 1e-12)  # expected ratings 1 and 10
    assert legacy.rate(logits, np.array([0.1, 0.9])).tolist() == pytest.approx([2.0, 9.0])


def test_a_tie_is_fitted_to_the_plain_median() -> None:
    """Reviews every reading rates alike leave nothing to choose: the median, no slope."""
    logits = np.log(np.eye(10)[[8] * 30] + 1e-12)
    fitted = RatingCalibration.fit(logits, np.full(30, 9.0), np.full(30, 0.9))
    assert fitted == RatingCalibration(0.5, 0.0)


def test_rating_calibration_needs_data() -> None:
    with pytest.raises(ModelError, match="at least 20"):
        RatingCalibration.fit(np.zeros((5, 10)), np.arange(5.0), np.ones(5))
