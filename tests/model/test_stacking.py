"""Stacking an n-gram head on a serving bundle: the graph computes the NumPy mixture, a mix
of 0 serves the original, a stacked bundle verifies and restacking replaces the head."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from cinesense.model.onnx_predict import OnnxPredictor, verify_bundle
from cinesense.model.stacking import (
    METADATA_KEY,
    PREFIX,
    HeadTraining,
    NgramConfig,
    NgramFeatures,
    NgramHead,
    base_model,
    char_table,
    mixture,
    pad_ids,
    stack_bundle,
    stack_model,
)

pytestmark = pytest.mark.slow  # the tiny bundle is trained once per session

TEXTS = [
    "정말 재밌는 영화였다 ㅋㅋㅋ 10점!",
    "최악",
    "가" * 300,  # longer than the token window: truncated
    "그냥 그래요 배우 연기는 좋았다",
    "돈 아깝다... 보지 마세요",
]


def _random_head(config: NgramConfig, seed: int = 0) -> NgramHead:
    rng = np.random.default_rng(seed)
    weights = rng.normal(size=(config.buckets, 10)).astype(np.float32)
    return NgramHead.quantize(config, weights, rng.normal(size=10).astype(np.float32))


def _session(model):
    import onnxruntime as ort

    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


def _parts(bundle: Path, config: NgramConfig):
    """The bundle's FP32 graph (INT8 would shift with its batch-mates), the features, ids."""
    import onnx

    from cinesense.model.export import FP32_FILE

    manifest = verify_bundle(bundle)
    base = onnx.load(str(bundle / FP32_FILE))
    features = NgramFeatures.for_tokenizer(bundle / "tokenizer.json", config)
    predictor = OnnxPredictor(bundle, manifest, threads=1)
    ids = [e.ids for e in predictor.tokenizer.encode_batch(TEXTS)]
    return base, features, ids


def test_the_stacked_graph_computes_the_numpy_mixture(tiny_bundle: Path) -> None:
    config = NgramConfig(buckets=4099)
    base, features, ids = _parts(tiny_bundle, config)
    head = _random_head(config)
    stacked = _session(stack_model(base, features, head, 0.4, {}))
    padded, mask = pad_ids(ids)
    inputs = {"input_ids": padded, "attention_mask": mask}
    deep = _session(base).run(["logits"], inputs)[0].astype(np.float64)
    expected = mixture(deep, head.logits(features.matrix(ids)), 0.4)
    batched = stacked.run(["logits"], inputs)[0]
    np.testing.assert_allclose(batched, expected, atol=1e-4)
    one_by_one = [
        stacked.run(["logits"], {"input_ids": p[None], "attention_mask": m[None, : len(p)]})[0]
        for p, m in ((np.array(row), np.ones(len(row), np.int64)) for row in ids)
    ]
    np.testing.assert_allclose(np.concatenate(one_by_one), batched, atol=1e-4)  # padding-free


def test_token_and_char_ngrams_each_reach_the_head(tiny_bundle: Path) -> None:
    """Each feature family alone still matches the graph (the hashing is the same)."""
    for config in (NgramConfig(97, (), (1, 2, 3)), NgramConfig(97, (2, 3), ())):
        base, features, ids = _parts(tiny_bundle, config)
        head = _random_head(config, seed=1)
        padded, mask = pad_ids(ids)
        out = _session(stack_model(base, features, head, 0.95, {})).run(
            ["logits"], {"input_ids": padded, "attention_mask": mask}
        )[0]
        deep = _session(base).run(["logits"], {"input_ids": padded, "attention_mask": mask})[0]
        expected = mixture(deep.astype(np.float64), head.logits(features.matrix(ids)), 0.95)
        np.testing.assert_allclose(out, expected, atol=1e-4)


def test_a_mix_of_zero_serves_the_original_distribution(tiny_bundle: Path) -> None:
    config = NgramConfig(buckets=101)
    base, features, ids = _parts(tiny_bundle, config)
    padded, mask = pad_ids(ids)
    inputs = {"input_ids": padded, "attention_mask": mask}
    deep = _session(base).run(["logits"], inputs)[0]
    out = _session(stack_model(base, features, _random_head(config), 0.0, {})).run(
        ["logits"], inputs
    )[0]
    shifted = deep - deep.max(axis=1, keepdims=True)
    log_softmax = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    np.testing.assert_allclose(out, log_softmax, atol=1e-5)


def test_the_base_graph_comes_back_from_a_stacked_one(tiny_bundle: Path) -> None:
    config = NgramConfig(buckets=101)
    base, features, _ = _parts(tiny_bundle, config)
    stacked = stack_model(base, features, _random_head(config), 0.3, {"mix": 0.3})
    assert any(p.key == METADATA_KEY for p in stacked.metadata_props)
    assert base_model(stacked).SerializeToString() == base.SerializeToString()
    again = stack_model(stacked, features, _random_head(config, seed=2), 0.5, {})
    added = [n for n in again.graph.node if n.name.startswith(PREFIX)]
    assert len(added) == len([n for n in stacked.graph.node if n.name.startswith(PREFIX)])


def test_the_char_table_spells_words_with_their_spaces(tmp_path: Path) -> None:
    vocab = {"[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3, "영화": 4, "##다": 5, "좋": 6}
    tokenizer = {"model": {"type": "WordPiece", "vocab": vocab, "continuing_subword_prefix": "##"}}
    path = tmp_path / "tokenizer.json"
    path.write_text(json.dumps(tokenizer, ensure_ascii=False))
    table = char_table(path)
    letters = {code: ch for ch, code in zip(sorted("영화다좋"), range(2, 6), strict=True)}
    letters[0], letters[1] = " ", "?"

    def spelled(ids: list[int]) -> str:
        return "".join(letters[int(c)] for c in table[ids].ravel() if c >= 0)

    assert spelled([2, 4, 5, 6, 1, 3]) == " 영화다 좋 ? "
    assert table.shape == (len(vocab), 3)


def test_int8_storage_keeps_every_weight_within_half_a_step() -> None:
    config = NgramConfig(buckets=50)
    weights = np.random.default_rng(3).normal(size=(50, 10)).astype(np.float32)
    head = NgramHead.quantize(config, weights, np.zeros(10, np.float32))
    assert head.table.dtype == np.int8
    assert np.all(np.abs(head.weights() - weights) <= head.scales / 2 + 1e-7)


def test_a_stacked_bundle_verifies_and_restacking_replaces_its_head(
    tiny_bundle: Path, sample_dataset, tmp_path: Path
) -> None:
    config, training = NgramConfig(buckets=4093), HeadTraining(epochs=2)
    first = stack_bundle(tiny_bundle, sample_dataset, tmp_path / "one", config, training, 1)
    manifest = verify_bundle(first.directory)  # every file's size and SHA-256
    report = manifest["stacked_head"]
    assert set(manifest["files"]) == {
        manifest["served_file"],
        "tokenizer.json",
        "label_map.json",
        "rating_calibration.json",
    }
    assert report["parity_max_abs_diff"] < 1e-4 and 0 <= report["mix"] < 1
    assert report["validation_accuracy_combined"] >= report["validation_accuracy_base"]
    assert report["kept"] == (report["mix"] > 0)
    assert report["buckets"] == 4093 and len(report["epochs"]) == 2
    assert manifest["served"] == verify_bundle(tiny_bundle)["served"]
    predictions = OnnxPredictor.from_bundle(first.directory).predict(TEXTS)
    assert all(p.label in {"positive", "negative"} for p in predictions)
    second = stack_bundle(first.directory, sample_dataset, tmp_path / "two", config, training, 1)
    base = second.manifest["stacked_head"]["base"]
    assert base == report["base"]  # stacked on the same base graph, not on the first head


def test_the_shipped_bundle_describes_its_stacked_head() -> None:
    """When the package's default model carries a stacked head, its manifest says what it
    was stacked on and how it was checked, and the graph says the same mix."""
    import onnx

    from cinesense.config import Settings

    bundle = Settings().stack.default_bundle
    assert bundle is not None
    manifest = verify_bundle(bundle)
    report = manifest.get("stacked_head")
    if report is None:
        pytest.skip("the shipped bundle has no stacked head")
    assert report["parity_max_abs_diff"] < 1e-4 and 0 < report["mix"] < 1
    recalibrated = manifest.get("calibration", {})  # benchmarks/calibration_benchmark.py
    assert (
        recalibrated.get("validation_sample_accuracy_before", report["validation_sample_accuracy"])
        == report["validation_sample_accuracy"]
    )
    assert (
        recalibrated.get("validation_sample_accuracy", report["validation_sample_accuracy"])
        == manifest["shipped"]["benchmark"]["validation_accuracy"]
    )
    graph = onnx.load(str(Path(bundle) / manifest["served_file"]))
    described = json.loads(next(p.value for p in graph.metadata_props if p.key == METADATA_KEY))
    assert described["mix"] == report["mix"] and described["buckets"] == report["buckets"]
