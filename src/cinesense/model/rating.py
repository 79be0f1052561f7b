"""The 1–10 rating estimate: the model's expected rating, calibrated on real ratings.

The rating head is trained on a sample whose rating mix need not match the world's, so
its raw expected rating is biased. Calibration fits a monotone map from that score to the
*median* real rating (the value that minimizes absolute error) on validation reviews:
scores are cut into quantile bins, each bin's median real rating is taken, the medians
are made monotone (isotonic regression) and interpolated linearly between bin centres.

A rating never contradicts the label shown beside it: :meth:`RatingCalibration.rate`
keeps a positive review's rating above 5 and a negative one's below 6 (only reviews near
the decision boundary move, and only to the edge of their label's side).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cinesense.errors import ModelError

CALIBRATION_FILE = "rating_calibration.json"
POSITIVE_FLOOR = 5.1  # a positive review is rated above 5 …
NEGATIVE_CEILING = 5.9  # … and a negative one below 6


@dataclass(frozen=True)
class RatingCalibration:
    scores: tuple[float, ...]
    ratings: tuple[float, ...]

    @classmethod
    def fit(cls, scores: np.ndarray, ratings: np.ndarray, bins: int = 40) -> RatingCalibration:
        scores, ratings = np.asarray(scores, float), np.asarray(ratings, float)
        if len(scores) < 20:
            raise ModelError("Rating calibration needs at least 20 rated validation reviews.")
        bins = max(2, min(bins, len(scores) // 10))
        edges = np.unique(np.quantile(scores, np.linspace(0, 1, bins + 1)))
        which = np.clip(np.searchsorted(edges, scores, side="right") - 1, 0, len(edges) - 2)
        centres, medians = [], []
        for b in range(len(edges) - 1):
            members = which == b
            if members.any():
                centres.append(float(np.median(scores[members])))
                medians.append(float(np.median(ratings[members])))
        from sklearn.isotonic import IsotonicRegression  # fitting only; serving needs NumPy

        monotone = IsotonicRegression(y_min=1, y_max=10).fit_transform(centres, medians)
        return cls(tuple(centres), tuple(float(v) for v in monotone))

    def __call__(self, scores: np.ndarray) -> np.ndarray:
        return np.clip(np.interp(scores, self.scores, self.ratings), 1.0, 10.0)

    def rate(self, scores: np.ndarray, probability_positive: np.ndarray) -> np.ndarray:
        """Calibrated ratings on the side of the scale that the binary label is on."""
        ratings = self(scores)
        positive = np.asarray(probability_positive) >= 0.5
        return np.where(
            positive, np.maximum(ratings, POSITIVE_FLOOR), np.minimum(ratings, NEGATIVE_CEILING)
        )

    def save(self, directory: Path) -> None:
        data = {
            "method": "median rating per score quantile, isotonic, interpolated",
            "scores": self.scores,
            "ratings": self.ratings,
        }
        (Path(directory) / CALIBRATION_FILE).write_text(json.dumps(data, indent=2))

    @classmethod
    def load(cls, directory: Path) -> RatingCalibration:
        data = json.loads((Path(directory) / CALIBRATION_FILE).read_text())
        return cls(tuple(data["scores"]), tuple(data["ratings"]))
