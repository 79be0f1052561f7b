"""A shipped (slim) bundle loads, verifies and predicts exactly like its source."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from cinesense.model.heads import positive_log_odds
from cinesense.model.onnx_predict import OnnxPredictor
from cinesense.model.rating import RatingCalibration
from cinesense.model.shipping import recalibrate_bundle, write_shipped_bundle

pytestmark = pytest.mark.slow


def test_the_slim_copy_predicts_like_its_source(tmp_path, tiny_bundle) -> None:
    target = tmp_path / "default_model"
    manifest = write_shipped_bundle(
        tiny_bundle, target, {"data_fingerprint": "abc", "command": "make it"}
    )
    assert manifest["shipped"]["data_fingerprint"] == "abc"
    assert sorted(p.name for p in target.glob("*.onnx")) == [manifest["served_file"]]
    texts = ["정말 재밌어요", "최악의 영화"]
    assert OnnxPredictor.from_bundle(target).predict(texts) == OnnxPredictor.from_bundle(
        tiny_bundle
    ).predict(texts)
    on_disk = json.loads((target / "manifest.json").read_text())
    assert on_disk["shipped"]["command"] == "make it"


def test_a_bundle_takes_a_new_decision_and_rating_calibration(tmp_path, tiny_bundle) -> None:
    """Only the label map and the ratings change; the manifest still verifies and records
    the refit, and a shipped bundle's figures and command say so."""
    bundle = tmp_path / "bundle"
    texts = ["정말 재밌어요", "최악의 영화", "그냥 그랬다"]
    before = OnnxPredictor.from_bundle(tiny_bundle)
    shipped = write_shipped_bundle(
        tiny_bundle, bundle, {"command": "train it", "benchmark": {"rating_mae": 2.0}}
    )
    label_map = replace(before.label_map, positive_offset=0.7)
    record = {"fitted_on": "a test", "command": "refit it"}
    manifest = recalibrate_bundle(
        bundle, label_map, RatingCalibration(0.9, -0.5), record, {"rating_mae": 1.5}
    )
    assert manifest["calibration"] == {
        "positive_offset": 0.7,
        "quantile": 0.9,
        "confidence_slope": -0.5,
        **record,
    }
    assert manifest["shipped"]["command"] == "train it && refit it"
    assert manifest["shipped"]["benchmark"]["rating_mae"] == 1.5
    assert manifest["files"]["model.int8.onnx"] == shipped["files"]["model.int8.onnx"]
    after = OnnxPredictor.from_bundle(bundle)
    assert (after.label_map, after.calibration) == (label_map, RatingCalibration(0.9, -0.5))
    np.testing.assert_allclose(after.logits(texts), before.logits(texts))
    logits = after.logits(texts).astype(np.float64)
    odds = positive_log_odds(logits, label_map)
    expected = 1 / (1 + np.exp(-(odds - 0.7)))
    assert [p.probability_positive for p in after.predict(texts)] == pytest.approx(
        list(expected), abs=1e-4
    )


def test_the_shipped_default_champion_verifies_and_answers() -> None:
    """The bundle in the package (the first champion of `make up`) is whole, small enough
    for git, says where it came from, and tells a clear review's sentiment."""
    from cinesense.config import Settings
    from cinesense.model.onnx_predict import verify_bundle
    from cinesense.model.shipping import MAX_SHIPPED_MB

    bundle = Settings().stack.default_bundle
    assert bundle is not None
    manifest = verify_bundle(bundle)
    assert sum(manifest["sizes_mb"].values()) <= MAX_SHIPPED_MB
    shipped = manifest["shipped"]
    assert shipped["command"].startswith("python benchmarks/train_benchmark.py")
    assert 0.5 < shipped["benchmark"]["accuracy"] <= 1 and shipped["data_fingerprint"]
    predictor = OnnxPredictor.from_bundle(bundle, threads=1)
    negative, positive = predictor.label_map.validation_recall or (0.0, 0.0)
    assert min(negative, positive) > 0.8, "movie shares are estimated with this recall"
    good, bad = predictor.predict(["배우들 연기가 정말 좋았어요 최고", "시간 아까운 최악의 영화"])
    assert (good.label, bad.label) == ("positive", "negative")
    assert good.rating > 5 > bad.rating


def test_a_fine_tuned_model_gets_its_wide_head_afterwards(
    tmp_path, tiny_model, sample_dataset
) -> None:
    """`add_wide_head` (the train benchmark's --reuse-finetuned) trains and mixes the head
    as fine-tuning does and records it; the model still loads and predicts."""
    import shutil

    from cinesense.model.finetune import add_wide_head
    from cinesense.model.predict import TorchPredictor
    from cinesense.model.wide import WIDE_CONFIG, WIDE_WEIGHTS
    from tests.conftest import tiny_settings

    model = tmp_path / "model"
    shutil.copytree(tiny_model, model)
    for name in (WIDE_CONFIG, WIDE_WEIGHTS):
        (model / name).unlink(missing_ok=True)
    report = add_wide_head(model, sample_dataset, tiny_settings(tmp_path))
    manifest = json.loads((model / "training_manifest.json").read_text())
    assert manifest["wide_head"] == json.loads(json.dumps(report))
    assert (model / WIDE_CONFIG).exists() == report["kept"]
    assert len(TorchPredictor.from_directory(model).predict(["재밌다"])) == 1
