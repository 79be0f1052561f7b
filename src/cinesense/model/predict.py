"""Predict sentiment and a 1–10 rating for review texts with a fine-tuned model."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from transformers import AutoTokenizer

from cinesense.errors import ModelError
from cinesense.model.heads import LabelMap, positive_probability
from cinesense.model.rating import CALIBRATION_FILE, RatingCalibration, ScoreCalibration
from cinesense.model.wide import load_classifier
from cinesense.text import normalize_review

REQUIRED_FILES = ("config.json", "label_map.json", CALIBRATION_FILE)


@dataclass(frozen=True)
class Prediction:
    text: str
    label: str
    probability_positive: float
    confidence: float
    rating: float


@dataclass(frozen=True)
class Scores:
    probability_positive: np.ndarray
    logits: np.ndarray


class TorchPredictor:
    """PyTorch inference; texts are normalized, length-sorted and batched."""

    def __init__(
        self,
        model,
        tokenizer,
        label_map: LabelMap,
        calibration: RatingCalibration | ScoreCalibration | None,
        max_length: int = 128,
    ) -> None:
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.label_map = label_map
        self.calibration = calibration
        self.max_length = max_length

    @classmethod
    def from_directory(cls, directory: str | Path) -> TorchPredictor:
        directory = Path(directory)
        missing = [name for name in REQUIRED_FILES if not (directory / name).exists()]
        if missing:
            raise ModelError(
                f"{directory} is not a cinesense model directory (missing {', '.join(missing)}). "
                "Train one with `cinesense train`."
            )
        model = load_classifier(directory)
        tokenizer = AutoTokenizer.from_pretrained(directory)
        return cls(
            model,
            tokenizer,
            LabelMap.load(directory),
            RatingCalibration.load(directory),
            tokenizer.model_max_length,
        )

    @torch.no_grad()
    def logits(self, texts: list[str], batch_size: int = 128) -> np.ndarray:
        normalized = [normalize_review(t) for t in texts]
        order = np.argsort([len(t) for t in normalized], kind="stable")
        out = np.zeros((len(texts), self.model.config.num_labels), dtype=np.float32)
        for start in range(0, len(order), batch_size):
            index = order[start : start + batch_size]
            batch = self.tokenizer(
                [normalized[i] for i in index],
                truncation=True,
                max_length=self.max_length,
                padding=True,
                return_tensors="pt",
            )
            out[index] = self.model(
                input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]
            ).logits.numpy()
        return out

    def scores(self, texts: list[str], batch_size: int = 128) -> Scores:
        logits = self.logits(texts, batch_size).astype(np.float64)
        return Scores(positive_probability(logits, self.label_map), logits)

    def positive_probability(self, texts: list[str], batch_size: int = 128) -> np.ndarray:
        return self.scores(texts, batch_size).probability_positive

    def predict(self, texts: list[str], batch_size: int = 128) -> list[Prediction]:
        if self.calibration is None:
            raise ModelError("This predictor has no rating calibration; load a saved model.")
        scores = self.scores(texts, batch_size)
        ratings = self.calibration.rate(scores.logits, scores.probability_positive)
        predictions = []
        for text, p, rating in zip(texts, scores.probability_positive, ratings, strict=True):
            label = self.label_map.labels[int(p >= 0.5)]
            predictions.append(
                Prediction(
                    text,
                    label,
                    round(float(p), 4),
                    round(float(max(p, 1 - p)), 4),
                    round(float(rating), 1),
                )
            )
        return predictions
