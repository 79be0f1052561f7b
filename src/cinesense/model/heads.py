"""How one 10-way rating head gives both the binary sentiment and the 1–10 rating.

The classifier has one logit per star rating (1–10). The binary sentiment is read from
the same logits: the log-probability mass of the positive ratings (9–10 by default)
against that of the negative ratings (1–4); neutral ratings (5–8) do not enter it, less
the label map's ``positive_offset`` (the prior correction chosen on validation so that the
label treats both classes alike; model/balance.py). The label map saved with every model
records which ratings are which and the offset, so serving (NumPy or ONNX) and evaluation
read the label the same way.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

TRAINING_MANIFEST = "training_manifest.json"
LABEL_MAP_FILE = "label_map.json"
NUM_RATINGS = 10


@dataclass(frozen=True)
class LabelMap:
    negative_max_rating: int = 4
    positive_min_rating: int = 9
    labels: tuple[str, str] = ("negative", "positive")
    positive_offset: float = 0.0  # taken from the positive log-odds (model/balance.py)
    # Recall of the negative and the positive class on labelled validation reviews, at
    # this offset: what turns a share of labels into an estimated share (model/quantify.py).
    validation_recall: tuple[float, float] | None = None

    @property
    def negative_slice(self) -> slice:
        return slice(0, self.negative_max_rating)

    @property
    def positive_slice(self) -> slice:
        return slice(self.positive_min_rating - 1, NUM_RATINGS)

    def id2label(self) -> dict[int, str]:
        return {i: f"rating_{i + 1}" for i in range(NUM_RATINGS)}

    def save(self, directory: Path) -> None:
        data = {
            **asdict(self),
            "ratings": list(range(1, NUM_RATINGS + 1)),
            "head": "10-way rating logits; binary = logsumexp(positive) vs logsumexp(negative)",
        }
        (Path(directory) / LABEL_MAP_FILE).write_text(json.dumps(data, indent=2))

    @classmethod
    def load(cls, directory: Path) -> LabelMap:
        data = json.loads((Path(directory) / LABEL_MAP_FILE).read_text())
        return cls(
            data["negative_max_rating"],
            data["positive_min_rating"],
            tuple(data["labels"]),
            float(data.get("positive_offset", 0.0)),  # files before 2026-12-07 have none
            _pair(data.get("validation_recall")),
        )


def _pair(values: list[float] | None) -> tuple[float, float] | None:
    if values is None:
        return None
    negative, positive = values
    return float(negative), float(positive)


def _logsumexp(x: np.ndarray) -> np.ndarray:
    peak = x.max(axis=-1, keepdims=True)
    return (peak + np.log(np.exp(x - peak).sum(axis=-1, keepdims=True)))[..., 0]


def positive_log_odds(logits: np.ndarray, label_map: LabelMap) -> np.ndarray:
    """log P(positive ratings) − log P(negative ratings), before the label map's offset."""
    negative = _logsumexp(logits[:, label_map.negative_slice])
    positive = _logsumexp(logits[:, label_map.positive_slice])
    return positive - negative


def positive_probability(logits: np.ndarray, label_map: LabelMap) -> np.ndarray:
    """P(positive | positive or negative) from rating logits of shape (n, 10), at the
    label map's offset."""
    log_odds = positive_log_odds(logits, label_map) - label_map.positive_offset
    return 1.0 / (1.0 + np.exp(-log_odds))


def expected_rating(logits: np.ndarray) -> np.ndarray:
    """The mean of the predicted rating distribution (a score for calibration)."""
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    probabilities = shifted / shifted.sum(axis=-1, keepdims=True)
    return probabilities @ np.arange(1, NUM_RATINGS + 1, dtype=np.float64)
