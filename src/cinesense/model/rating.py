"""The 1–10 rating estimate, read from the model's rating distribution.

The rating head gives a distribution over the ten ratings. The value that minimizes the
expected absolute error is that distribution's median; the rating served is a quantile of
it, the quantile chosen on validation reviews (measured on the full corpus, 2026-12-06:
0.55, validation MAE 1.307, where the median gives 1.321 and the older calibration below
1.365). Since 2026-12-07 the quantile may move with the label's confidence,
``quantile + confidence_slope * |P(positive) - 0.5|``, both chosen on validation: reviews
whose label is unsure are served a higher quantile (on the bundle shipped 2026-12-06, read
at even odds: 0.625 falling to 0.5 for the surest, test MAE 1.304 -> 1.299; benchmarks/
RESULTS.md, model attempts).
Files without a slope rate as before.

Rating files written before 2026-12-06 hold that older calibration: a monotone map from
the *expected* rating to the median real rating (quantile bins, isotonic, interpolated).
They still load and rate as before (:class:`ScoreCalibration`), so models already in a
registry keep their ratings.

A rating never contradicts the label shown beside it: ``rate`` keeps a positive review's
rating above 5 and a negative one's below 6 (only reviews near the decision boundary
move, and only to the edge of their label's side).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cinesense.errors import ModelError
from cinesense.model.heads import NUM_RATINGS, expected_rating

CALIBRATION_FILE = "rating_calibration.json"
POSITIVE_FLOOR = 5.1  # a positive review is rated above 5 …
NEGATIVE_CEILING = 5.9  # … and a negative one below 6
QUANTILES = tuple(np.round(np.arange(0.3, 0.71, 0.025), 3))
CONFIDENCE_SLOPES = tuple(np.round(np.arange(-0.5, 0.21, 0.05), 3))
MIN_RATED_REVIEWS = 20


def on_label_side(ratings: np.ndarray, probability_positive: np.ndarray) -> np.ndarray:
    positive = np.asarray(probability_positive) >= 0.5
    return np.where(
        positive, np.maximum(ratings, POSITIVE_FLOOR), np.minimum(ratings, NEGATIVE_CEILING)
    )


@dataclass(frozen=True)
class RatingCalibration:
    """A quantile of the predicted rating distribution, on its label's side; the quantile
    is ``quantile + confidence_slope * |P(positive) - 0.5|`` for each review."""

    quantile: float = 0.5
    confidence_slope: float = 0.0

    @classmethod
    def fit(
        cls, logits: np.ndarray, ratings: np.ndarray, probability_positive: np.ndarray
    ) -> RatingCalibration:
        """The quantile and slope with the lowest absolute error on these rated reviews
        (on a tie, the flattest slope and the quantile nearest the median)."""
        ratings = np.asarray(ratings, float)
        _enough(ratings)
        cumulative = _cumulative(logits)
        errors = {}
        for quantile in QUANTILES:
            for slope in CONFIDENCE_SLOPES:
                candidate = cls(float(quantile), float(slope))
                read = candidate._read(cumulative, probability_positive)
                errors[candidate] = np.abs(
                    on_label_side(read, probability_positive) - ratings
                ).mean()
        return min(
            errors,
            key=lambda c: (errors[c], abs(c.confidence_slope), abs(c.quantile - 0.5)),
        )

    def __call__(self, logits: np.ndarray, probability_positive: np.ndarray) -> np.ndarray:
        """Each review's quantile of its rating distribution (on either side of the scale)."""
        return self._read(_cumulative(logits), probability_positive)

    def _read(self, cumulative: np.ndarray, probability_positive: np.ndarray) -> np.ndarray:
        confidence = np.abs(np.asarray(probability_positive, np.float64) - 0.5)
        quantiles = np.clip(self.quantile + self.confidence_slope * confidence, 0.01, 0.99)
        return (cumulative >= quantiles[:, None]).argmax(axis=-1) + 1.0

    def rate(self, logits: np.ndarray, probability_positive: np.ndarray) -> np.ndarray:
        """Ratings on the side of the scale that the binary label is on."""
        return on_label_side(self(logits, probability_positive), probability_positive)

    def save(self, directory: Path) -> None:
        data = {
            "method": "quantile of the predicted rating distribution, moving with confidence",
            **self.__dict__,
        }
        (Path(directory) / CALIBRATION_FILE).write_text(json.dumps(data, indent=2))

    @staticmethod
    def load(directory: Path) -> RatingCalibration | ScoreCalibration:
        data = json.loads((Path(directory) / CALIBRATION_FILE).read_text())
        if "quantile" in data:
            return RatingCalibration(
                float(data["quantile"]), float(data.get("confidence_slope", 0.0))
            )
        return ScoreCalibration(tuple(data["scores"]), tuple(data["ratings"]))


@dataclass(frozen=True)
class ScoreCalibration:
    """The calibration of rating files written before 2026-12-06 (see the module doc)."""

    scores: tuple[float, ...]
    ratings: tuple[float, ...]

    def __call__(self, logits: np.ndarray) -> np.ndarray:
        scores = expected_rating(np.asarray(logits, np.float64))
        return np.clip(np.interp(scores, self.scores, self.ratings), 1.0, float(NUM_RATINGS))

    def rate(self, logits: np.ndarray, probability_positive: np.ndarray) -> np.ndarray:
        return on_label_side(self(logits), probability_positive)


def _cumulative(logits: np.ndarray) -> np.ndarray:
    """The cumulative rating distribution of each review."""
    logits = np.asarray(logits, np.float64)
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return np.cumsum(shifted / shifted.sum(axis=-1, keepdims=True), axis=-1)


def _enough(ratings: np.ndarray) -> None:
    if len(ratings) < MIN_RATED_REVIEWS:
        raise ModelError(
            f"Rating calibration needs at least {MIN_RATED_REVIEWS} rated validation reviews."
        )
