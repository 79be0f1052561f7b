"""The wide n-gram head: hashing inside the model, training, the mix, save/load and ONNX."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from cinesense.model.heads import LabelMap
from cinesense.model.wide import (
    WIDE_CONFIG,
    WIDE_WEIGHTS,
    WideAndDeep,
    WideConfig,
    WideHead,
    fit_mix,
    load_classifier,
)


def _random_head(buckets: int = 997) -> WideHead:
    head = WideHead(WideConfig(buckets=buckets))
    torch.nn.init.normal_(head.table.weight)
    return head.eval()


def test_padding_does_not_change_the_wide_logits() -> None:
    head = _random_head()
    text = torch.tensor([[2, 51, 77, 903, 3]])
    padded = torch.tensor([[2, 51, 77, 903, 3, 0, 0, 0]])
    alone = head(text, torch.ones_like(text))
    with_padding = head(padded, (padded != 0).long())
    torch.testing.assert_close(alone, with_padding)


def test_every_ngram_inside_the_text_is_counted_once() -> None:
    head = _random_head()
    ids = torch.tensor([[2, 10, 11, 12, 3, 0]])
    mask = torch.tensor([[1, 1, 1, 1, 1, 0]])
    buckets, valid = head.hashed(ids, mask)
    assert valid.sum().item() == 5 + 4 + 3  # unigrams, bigrams, trigrams of 5 tokens
    assert int(buckets.min()) >= 0 and int(buckets.max()) < head.config.buckets


def test_the_mix_is_zero_when_the_wide_head_only_hurts() -> None:
    label_map = LabelMap()
    labels = np.array([0, 1] * 50)
    deep = np.zeros((100, 10))
    deep[labels == 1, 9], deep[labels == 0, 0] = 3.0, 3.0  # BERT right on every review
    wide = -deep  # the wide head wrong on every review
    mix, accuracy = fit_mix(deep, wide, labels, label_map)
    assert mix == 0.0 and accuracy == 1.0


@pytest.mark.slow
def test_the_fine_tuned_model_keeps_its_wide_head_only_when_it_helped(tiny_model: Path) -> None:
    manifest = json.loads((tiny_model / "training_manifest.json").read_text())
    report = manifest["wide_head"]
    assert report["validation_accuracy_combined"] >= report["validation_accuracy_bert"]
    model = load_classifier(tiny_model)
    assert isinstance(model, WideAndDeep) == report["kept"] == (report["mix"] > 0)
    assert (tiny_model / WIDE_CONFIG).exists() == report["kept"]
    if report["kept"]:
        assert isinstance(model, WideAndDeep) and model.mix == pytest.approx(report["mix"])


@pytest.fixture(scope="module")
def wide_model(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model with a random wide head mixed in at weight 0.5, saved."""
    directory = tmp_path_factory.mktemp("wide") / "model"
    shutil.copytree(tiny_model, directory)
    for name in (WIDE_CONFIG, WIDE_WEIGHTS):
        (directory / name).unlink(missing_ok=True)
    bert = load_classifier(directory)
    bert = bert.bert if isinstance(bert, WideAndDeep) else bert
    WideAndDeep(bert, _random_head(WideConfig().buckets), 0.5).save_pretrained(directory)
    return directory


@pytest.mark.slow
def test_a_saved_wide_head_loads_back_with_its_mix(wide_model: Path) -> None:
    model = load_classifier(wide_model)
    assert isinstance(model, WideAndDeep) and float(model.mix) == 0.5
    ids = torch.tensor([[2, 40, 41, 3]])
    with torch.no_grad():
        combined = model(ids, torch.ones_like(ids)).logits
        deep = model.bert(input_ids=ids, attention_mask=torch.ones_like(ids)).logits
    assert not torch.allclose(combined, deep)


@pytest.mark.slow
def test_the_onnx_bundle_computes_the_wide_head_in_its_graph(
    wide_model: Path, sample_dataset, tmp_path: Path
) -> None:
    from cinesense.model.export import FP32_FILE, build_serving_bundle
    from cinesense.model.onnx_predict import OnnxPredictor
    from cinesense.model.predict import TorchPredictor

    manifest = build_serving_bundle(wide_model, tmp_path / "bundle", sample_dataset["test"])
    assert manifest["parity_max_abs_diff"] < 1e-3
    texts = ["정말 재밌는 영화", "최악이다 돈 아깝다", "그냥 그래요", "배우 연기가 좋았다 ㅎㅎ"]
    expected = TorchPredictor.from_directory(wide_model).logits(texts)
    fp32 = OnnxPredictor(tmp_path / "bundle", {**manifest, "served_file": FP32_FILE})
    np.testing.assert_allclose(fp32.logits(texts), expected, atol=1e-3)
    served = OnnxPredictor.from_bundle(tmp_path / "bundle")
    assert served.predict(texts)[0].label in {"positive", "negative"}
