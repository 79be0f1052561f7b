"""ONNX export, INT8 quantization and the torch-free serving predictor (tiny model)."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from cinesense.errors import ModelError
from cinesense.model.export import FP32_FILE, INT8_FILE
from cinesense.model.onnx_predict import OnnxPredictor, verify_bundle
from cinesense.model.predict import TorchPredictor

pytestmark = pytest.mark.slow


@pytest.fixture
def bundle(tiny_bundle: Path) -> Path:
    return tiny_bundle


def test_bundle_manifest(bundle: Path) -> None:
    manifest = verify_bundle(bundle)
    assert manifest["served"] in {"int8", "fp32"}
    assert manifest["parity_max_abs_diff"] < 1e-3
    assert abs(manifest["accuracy_delta"]) <= 0.05
    assert set(manifest["files"]) == {
        FP32_FILE,
        INT8_FILE,
        "tokenizer.json",
        "label_map.json",
        "rating_calibration.json",
    }
    assert manifest["files"][INT8_FILE]["bytes"] < manifest["files"][FP32_FILE]["bytes"]
    assert "accuracy" in manifest["reason"]


def test_onnx_matches_torch(bundle: Path, tiny_model: Path) -> None:
    texts = ["정말 최고의 영화", "최악 돈 아까움", "그냥 그랬다 ㅋㅋㅋㅋㅋ", "가"]
    torch_predictions = TorchPredictor.from_directory(tiny_model).predict(texts)
    manifest = json.loads((bundle / "manifest.json").read_text())
    fp32 = OnnxPredictor(bundle, {**manifest, "served_file": FP32_FILE}, threads=1)
    for ours, theirs in zip(fp32.predict(texts), torch_predictions, strict=True):
        assert ours.label == theirs.label
        assert ours.probability_positive == pytest.approx(theirs.probability_positive, abs=1e-3)
        assert ours.rating == pytest.approx(theirs.rating, abs=0.11)


def test_served_model_in_a_process_without_torch(bundle: Path) -> None:
    code = (
        "import sys; sys.modules['torch'] = None; sys.modules['transformers'] = None\n"
        "from cinesense.model.onnx_predict import OnnxPredictor\n"
        f"p = OnnxPredictor.from_bundle({str(bundle)!r}, threads=1)\n"
        "print(p.predict(['재밌다'])[0].label, p.quantization)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[0] in {"positive", "negative"}


def test_batching_does_not_change_onnx_output(bundle: Path) -> None:
    manifest = verify_bundle(bundle)
    texts = ["좋다", "정말 정말 지루하고 재미없는 영화였다", "그럭저럭"]
    for file, tolerance in ((FP32_FILE, 1e-4), (INT8_FILE, 0.1)):
        # Dynamic INT8 quantizes activations with one range per batch, so batch-mates
        # shift its logits slightly; FP32 must not move at all.
        predictor = OnnxPredictor(bundle, {**manifest, "served_file": file}, threads=1)
        one_by_one = np.concatenate([predictor.logits([t]) for t in texts])
        np.testing.assert_allclose(
            predictor.logits(texts, batch_size=3), one_by_one, atol=tolerance
        )


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda d: (d / INT8_FILE).write_bytes(b"not a model"), "corrupt"),
        (lambda d: (d / "tokenizer.json").unlink(), "missing"),
        (lambda d: (d / "manifest.json").unlink(), "not a serving bundle"),
        (lambda d: (d / "manifest.json").write_text("{"), "unreadable"),
    ],
)
def test_damaged_bundles_are_refused(bundle: Path, tmp_path: Path, damage, message: str) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(bundle, copy)
    damage(copy)
    with pytest.raises(ModelError, match=message):
        OnnxPredictor.from_bundle(copy)
