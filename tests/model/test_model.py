"""Pretraining, fine-tuning, prediction and evaluation with the tiny preset."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer, BertForMaskedLM

from cinesense.config import PretrainSettings, Settings
from cinesense.data.dataset import Dataset
from cinesense.errors import DataError, ModelError, NetworkUnavailableError
from cinesense.model.base import resolve_base_model
from cinesense.model.baseline import TfidfBaseline
from cinesense.model.behaviour import CASES, run_behaviour_tests
from cinesense.model.evaluate import expected_calibration_error
from cinesense.model.finetune import finetune
from cinesense.model.predict import TorchPredictor
from cinesense.model.pretrain import pretrain
from cinesense.model.report import evaluation_report
from tests.conftest import tiny_settings

pytestmark = pytest.mark.slow


def test_base_is_a_reusable_hugging_face_directory(tiny_base: Path) -> None:
    manifest = json.loads((tiny_base / "cinesense_manifest.json").read_text())
    assert manifest["kind"] == "cinesense-self-built-base"
    assert len(manifest["data_fingerprint"]) == 64
    assert manifest["settings"]["preset"] == "tiny"
    assert manifest["command"]
    assert isinstance(BertForMaskedLM.from_pretrained(tiny_base), BertForMaskedLM)
    tokenizer = AutoTokenizer.from_pretrained(tiny_base)
    assert tokenizer.unk_token_id not in tokenizer("정말 재밌는 영화")["input_ids"]


def test_pretraining_is_seeded(tmp_path: Path) -> None:
    texts = [f"리뷰 번호 {i} 재밌다" if i % 2 else f"리뷰 {i} 별로다" for i in range(200)]
    settings = PretrainSettings(preset="tiny", max_steps=3, batch_size=16)
    for name in ("a", "b"):
        pretrain(texts, tmp_path / name, settings, progress=False)
    a = BertForMaskedLM.from_pretrained(tmp_path / "a").state_dict()
    b = BertForMaskedLM.from_pretrained(tmp_path / "b").state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_pretraining_needs_text(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="at least 100"):
        pretrain(["짧은 리뷰"] * 5, tmp_path / "base", PretrainSettings(preset="tiny"))


def test_fine_tuned_model_is_standard_and_complete(tiny_model: Path) -> None:
    model = AutoModelForSequenceClassification.from_pretrained(tiny_model)
    assert model.config.num_labels == 10
    assert model.config.id2label[9] == "rating_10"
    labels = json.loads((tiny_model / "label_map.json").read_text())
    assert labels["negative_max_rating"] == 4 and labels["positive_min_rating"] == 9
    manifest = json.loads((tiny_model / "training_manifest.json").read_text())
    assert manifest["history"] and manifest["best_step"] <= manifest["steps"]
    assert manifest["base_manifest"]["settings"]["preset"] == "tiny"


def test_beats_chance_on_held_out_movies(tiny_model: Path, sample_dataset: Dataset) -> None:
    report = evaluation_report(tiny_model, sample_dataset, Settings(), with_baseline=True)
    model = report["model"]
    assert report["trained_on_this_dataset"]
    assert model["accuracy"] >= 0.62, model
    assert model["roc_auc"] >= 0.7, model
    assert model["rating_mae"] < 2.3, model  # a constant guess scores about 2.3 here
    assert -1 <= model["rating_spearman"] <= 1
    assert sum(map(sum, model["confusion_matrix"])) == model["test_balanced_reviews"]
    assert report["baseline"]["accuracy"] > 0.6
    assert model["behaviour"]["cases"] == len(CASES)


def test_predictions(tiny_model: Path) -> None:
    predictor = TorchPredictor.from_directory(tiny_model)
    predictions = predictor.predict(["정말 최고의 영화 강추", "최악 돈 아까움", "ㅋ"])
    assert [p.label for p in predictions[:2]] == ["positive", "negative"]
    for p in predictions:
        assert 0 <= p.probability_positive <= 1 and 1 <= p.rating <= 10
        assert p.confidence == pytest.approx(
            max(p.probability_positive, 1 - p.probability_positive), abs=1e-4
        )
    assert predictions[0].rating > predictions[1].rating


def test_batching_does_not_change_predictions(tiny_model: Path) -> None:
    predictor = TorchPredictor.from_directory(tiny_model)
    texts = ["좋다", "정말 정말 지루하고 재미없는 영화였다 다시는 안 봄", "그럭저럭"]
    one_by_one = np.concatenate([predictor.logits([t]) for t in texts])
    np.testing.assert_allclose(predictor.logits(texts, batch_size=2), one_by_one, atol=1e-4)


def test_fine_tuning_is_seeded(sample_dataset: Dataset, tiny_base: Path, tmp_path: Path) -> None:
    settings = tiny_settings(tmp_path, base_model=str(tiny_base), max_steps=3)
    for name in ("a", "b"):
        finetune(sample_dataset, tmp_path / name, settings, progress=False)
    a = AutoModelForSequenceClassification.from_pretrained(tmp_path / "a").state_dict()
    b = AutoModelForSequenceClassification.from_pretrained(tmp_path / "b").state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_early_stopping(sample_dataset: Dataset, tiny_base: Path, tmp_path: Path) -> None:
    settings = tiny_settings(
        tmp_path,
        base_model=str(tiny_base),
        learning_rate=1e-6,
        eval_every_steps=5,
        early_stopping_patience=1,
        epochs=20,
    )
    result = finetune(sample_dataset, tmp_path / "model", settings, progress=False)
    assert len(result.history) == 2  # no improvement at the second evaluation
    assert result.steps == 10


def test_not_a_model_directory(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="not a cinesense model directory"):
        TorchPredictor.from_directory(tmp_path)


def test_base_model_resolution(tmp_path: Path, tiny_base: Path) -> None:
    settings = Settings(home=tmp_path, hf_offline=True)
    assert resolve_base_model(str(tiny_base), settings) == str(tiny_base)
    with pytest.raises(ModelError, match="cinesense pretrain"):
        resolve_base_model("self-built", settings)
    with pytest.raises(ModelError, match="Unknown base model"):
        resolve_base_model("no such model!", settings)
    with pytest.raises(ModelError, match=r"no config\.json"):
        resolve_base_model(str(tmp_path), settings)
    with pytest.raises(NetworkUnavailableError, match="hub access is off"):
        resolve_base_model("klue/bert-base", settings)


def test_behaviour_suite_scores_a_perfect_and_a_constant_model() -> None:
    truth = {text: expected for _, text, expected in CASES}
    perfect = run_behaviour_tests(lambda texts: np.array([truth[t] for t in texts], float))
    assert perfect["pass_rate"] == 1.0 and not perfect["failures"]
    constant = run_behaviour_tests(lambda texts: np.ones(len(texts)))
    assert constant["pass_rate"] == pytest.approx(sum(e for _, _, e in CASES) / len(CASES))


def test_expected_calibration_error() -> None:
    labels = np.array([1, 0, 1, 0])
    assert expected_calibration_error(np.array([1.0, 0.0, 1.0, 0.0]), labels) == 0.0
    assert expected_calibration_error(np.array([0.9, 0.9, 0.9, 0.9]), labels) == pytest.approx(0.4)


def test_tfidf_baseline(sample_dataset: Dataset) -> None:
    baseline = TfidfBaseline.fit(sample_dataset["train"])
    p = baseline.probability_positive(["최고의 영화", "최악의 영화"])
    assert p[0] > p[1]
    assert ((baseline.rating(["최고", "별로"]) >= 1) & (baseline.rating(["최고"]) <= 10)).all()
