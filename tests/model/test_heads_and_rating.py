import numpy as np
import pytest
import torch

from cinesense.errors import ModelError
from cinesense.model.finetune import binary_logits, review_loss
from cinesense.model.heads import LabelMap, expected_rating, positive_probability
from cinesense.model.rating import RatingCalibration


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


def test_rating_calibration_is_monotone_and_in_range(tmp_path) -> None:
    rng = np.random.default_rng(0)
    ratings = rng.integers(1, 11, size=2000).astype(float)
    scores = ratings + rng.normal(scale=1.5, size=ratings.size)
    calibration = RatingCalibration.fit(scores, ratings)
    grid = np.linspace(-5, 15, 200)
    mapped = calibration(grid)
    assert (np.diff(mapped) >= -1e-9).all()
    assert mapped.min() >= 1 and mapped.max() <= 10
    assert np.mean(np.abs(calibration(scores) - ratings)) < np.mean(np.abs(scores - ratings))
    calibration.save(tmp_path)
    assert RatingCalibration.load(tmp_path) == calibration


def test_rating_calibration_needs_data() -> None:
    with pytest.raises(ModelError, match="at least 20"):
        RatingCalibration.fit(np.arange(5.0), np.arange(5.0))
