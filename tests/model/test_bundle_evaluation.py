"""A serving bundle is evaluated torch-free, as served; label and rating agree."""

from __future__ import annotations

import numpy as np
import pytest

from cinesense.model.evaluate import label_rating_contradictions
from cinesense.model.onnx_predict import OnnxPredictor, ServedPrediction
from cinesense.model.report import bundle_report

pytestmark = pytest.mark.slow


def test_label_rating_contradictions_counts_each_side() -> None:
    probability = np.array([0.9, 0.9, 0.1, 0.1])
    rating = np.array([9.0, 5.0, 2.0, 6.0])
    assert label_rating_contradictions(probability, rating) == 0.5


def test_bundle_report_scores_the_bundle_as_served(tiny_bundle, sample_dataset) -> None:
    predictor = OnnxPredictor.from_bundle(tiny_bundle)
    report = bundle_report(predictor, sample_dataset["test"], seed=13, reference="tiny")
    model = report["model"]
    assert 0.5 <= model["accuracy"] <= 1.0
    assert 0.0 <= model["label_rating_contradictions"] <= 1.0
    assert model["behaviour"]["pass_rate"] >= 0.0
    assert report["quantization"] in ("int8", "fp32")


def test_symbol_only_text_is_uncertain(tiny_bundle) -> None:
    predictor = OnnxPredictor.from_bundle(tiny_bundle)
    symbols, words = predictor.predict(["!!! ^^ ...", "정말 재밌어요"])
    assert not symbols.readable and symbols.shown_label(0.5) == "uncertain"
    assert words.readable


def test_shown_label_follows_the_confidence_threshold() -> None:
    sure = ServedPrediction("positive", 0.9, 0.9, 8.0)
    unsure = ServedPrediction("positive", 0.55, 0.55, 6.0)
    assert sure.shown_label(0.6) == "positive"
    assert unsure.shown_label(0.6) == "uncertain"


def test_rating_stays_on_the_side_of_its_label() -> None:
    from cinesense.model.rating import RatingCalibration

    peaked = np.log(np.eye(10)[[8, 1, 4, 5]] + 1e-12)  # distributions at 9, 2, 5 and 6
    rated = RatingCalibration().rate(peaked, np.array([0.4, 0.6, 0.9, 0.1]))
    assert rated.tolist() == pytest.approx([5.9, 5.1, 5.1, 5.9])


def test_served_labels_and_ratings_never_contradict(tiny_bundle, sample_dataset) -> None:
    predictor = OnnxPredictor.from_bundle(tiny_bundle)
    predictions = predictor.predict(list(sample_dataset["test"]["text"][:300]))
    contradictions = [
        p
        for p in predictions
        if (p.label == "positive" and p.rating <= 5) or (p.label == "negative" and p.rating >= 6)
    ]
    assert contradictions == []
