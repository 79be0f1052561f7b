"""Recovering a bundle's BERT: the trainable model reproduces the graph, and fine-tuning
goes on from it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from cinesense.model.predict import TorchPredictor
from cinesense.model.recover import MAX_LOGIT_DIFFERENCE, RECOVERED, recover_classifier

pytestmark = pytest.mark.slow  # the tiny bundle is trained once per session

SHIPPED = Path(__file__).resolve().parents[2] / "src/cinesense/default_model"


def test_the_shipped_int8_bundle_gives_back_its_bert(tmp_path) -> None:
    report = recover_classifier(SHIPPED, tmp_path / "recovered")
    assert report["served"] == "int8"
    assert report["max_logit_difference"] <= 0.05  # measured 0.012 on 2026-12-06
    assert 7_000_000 < report["parameters"] < 8_000_000
    saved = json.loads((tmp_path / "recovered" / RECOVERED).read_text())
    assert saved["served_file_sha256"] == report["served_file_sha256"]


def test_a_recovered_tiny_model_predicts_like_the_one_exported(tmp_path, tiny_bundle) -> None:
    report = recover_classifier(tiny_bundle, tmp_path / "recovered")
    assert report["max_logit_difference"] <= MAX_LOGIT_DIFFERENCE[report["served"]]
    recovered = TorchPredictor.from_directory(tmp_path / "recovered")
    probabilities = recovered.positive_probability(["정말 재밌다", "최악의 영화", "그냥 그래요"])
    assert np.all((probabilities >= 0) & (probabilities <= 1))


def test_fine_tuning_goes_on_from_a_recovered_model(tmp_path, tiny_bundle, sample_dataset) -> None:
    from cinesense.model.finetune import finetune
    from tests.conftest import tiny_settings

    recover_classifier(tiny_bundle, tmp_path / "recovered")
    settings = tiny_settings(
        tmp_path, base_model=str(tmp_path / "recovered"), max_steps=20, shuffle_seed=7
    )
    result = finetune(sample_dataset, tmp_path / "again", settings, progress=False)
    assert result.steps == 20
    assert TorchPredictor.from_directory(tmp_path / "again").predict(["재밌다"])[0].label


def test_a_folder_that_is_no_bundle_is_refused(tmp_path) -> None:
    from cinesense.errors import ModelError

    with pytest.raises(ModelError, match="not a serving bundle"):
        recover_classifier(tmp_path, tmp_path / "recovered")
    assert not (tmp_path / "recovered").exists()
