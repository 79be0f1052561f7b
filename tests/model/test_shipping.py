"""A shipped (slim) bundle loads, verifies and predicts exactly like its source."""

from __future__ import annotations

import json

import pytest

from cinesense.model.onnx_predict import OnnxPredictor
from cinesense.model.shipping import write_shipped_bundle

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
