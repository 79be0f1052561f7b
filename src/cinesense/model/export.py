"""Export a fine-tuned model to ONNX, optimize and INT8-quantize it, check it, bundle it.

The steps, in order, each checked:

1. PyTorch → ONNX FP32 with dynamic batch and sequence axes.
2. ONNX Runtime's BERT graph optimizations (fused attention, layer norm, GELU).
3. Parity: FP32 ONNX logits must match PyTorch's (max |Δ| ≤ ``PARITY_TOLERANCE``) on
   review texts of varied length — a broken export is refused, never shipped.
4. Dynamic INT8 quantization (QInt8 weights, per-tensor — ORT's guidance for transformers).
5. Re-evaluation of FP32 and INT8 on the same labelled reviews. INT8 is served unless it
   loses more than ``max_accuracy_loss``; then FP32 is served and the manifest says why.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from cinesense.data.dataset import NEUTRAL, balanced_binary
from cinesense.errors import ModelError
from cinesense.files import atomic_directory
from cinesense.model.behaviour import CASES
from cinesense.model.heads import LABEL_MAP_FILE, positive_probability
from cinesense.model.onnx_predict import (
    BUNDLE_FORMAT,
    OnnxPredictor,
    write_bundle_manifest,
)
from cinesense.model.predict import TorchPredictor
from cinesense.model.rating import CALIBRATION_FILE

log = logging.getLogger(__name__)
PARITY_TOLERANCE = 1e-3
FP32_FILE = "model.fp32.onnx"
INT8_FILE = "model.int8.onnx"
MAX_EVALUATION_REVIEWS = 20000


def build_serving_bundle(
    model_dir: Path,
    out_dir: Path,
    evaluation: pd.DataFrame,
    max_accuracy_loss: float = 0.005,
    seed: int = 13,
) -> dict:
    """Export ``model_dir`` into a verified serving bundle at ``out_dir``; return its manifest.

    ``evaluation`` holds labelled reviews (a test split) to compare FP32 and INT8 on.
    """
    torch_predictor = TorchPredictor.from_directory(model_dir)
    labelled = balanced_binary(evaluation[evaluation["label"] != NEUTRAL], seed)
    labelled = labelled.sample(n=min(MAX_EVALUATION_REVIEWS, len(labelled)), random_state=seed)
    with tempfile.TemporaryDirectory() as scratch, atomic_directory(out_dir) as staging:
        raw = Path(scratch) / "raw.onnx"
        export_onnx(torch_predictor, raw)
        optimize_bert(raw, staging / FP32_FILE, torch_predictor.model.config)
        quantize_int8(staging / FP32_FILE, staging / INT8_FILE)
        for name in ("tokenizer.json", LABEL_MAP_FILE, CALIBRATION_FILE):
            shutil.copy(Path(model_dir) / name, staging / name)
        manifest = _draft_manifest(torch_predictor)
        parity = check_parity(torch_predictor, staging, manifest)
        accuracy = {
            kind: _accuracy(staging, manifest, name, labelled)
            for kind, name in (("fp32", FP32_FILE), ("int8", INT8_FILE))
        }
        delta = accuracy["int8"] - accuracy["fp32"]
        served = "int8" if delta >= -max_accuracy_loss else "fp32"
        manifest.update(
            served=served,
            served_file=INT8_FILE if served == "int8" else FP32_FILE,
            reason=(
                f"INT8 accuracy {accuracy['int8']:.4f} vs FP32 {accuracy['fp32']:.4f} "
                f"(change {delta * 100:+.2f} points; allowed loss {max_accuracy_loss * 100:.2f})"
                + ("" if served == "int8" else ": INT8 loses too much, serving FP32")
            ),
            parity_max_abs_diff=parity,
            accuracy_fp32=accuracy["fp32"],
            accuracy_int8=accuracy["int8"],
            accuracy_delta=delta,
            evaluation_reviews=len(labelled),
        )
        write_bundle_manifest(staging, manifest)
    log.info("bundle %s: serving %s (%s)", out_dir, manifest["served"], manifest["reason"])
    return manifest


def export_onnx(predictor: TorchPredictor, path: Path) -> None:
    """PyTorch → ONNX (opset 17, dynamic batch and sequence axes)."""
    import torch

    from cinesense.model.wide import load_classifier

    # The classic attention graph is what ONNX Runtime's BERT fusions recognise.
    model = load_classifier(predictor.model.name_or_path, attn_implementation="eager").eval()
    sample = predictor.tokenizer(["영화 리뷰", "짧다"], padding=True, return_tensors="pt")
    with warnings.catch_warnings():
        # The TorchScript exporter warns about traced Python conditionals and its own
        # deprecation; parity at several shapes (check_parity) is what guards the result.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            (sample["input_ids"], sample["attention_mask"]),
            str(path),
            input_names=["input_ids", "attention_mask"],
            output_names=["logits"],
            dynamic_axes={
                "input_ids": {0: "batch", 1: "sequence"},
                "attention_mask": {0: "batch", 1: "sequence"},
                "logits": {0: "batch"},
            },
            opset_version=17,
            dynamo=False,
        )


def optimize_bert(source: Path, target: Path, config) -> None:
    from onnxruntime.transformers.optimizer import optimize_model

    optimized = optimize_model(
        str(source),
        model_type="bert",
        num_heads=config.num_attention_heads,
        hidden_size=config.hidden_size,
    )
    optimized.save_model_to_file(str(target))


def quantize_int8(source: Path, target: Path) -> None:
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(
        str(source),
        str(target),
        weight_type=QuantType.QInt8,
        per_channel=False,
        # Fused contrib ops (BiasGelu, SkipLayerNormalization) defeat shape inference.
        extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
    )


def check_parity(predictor: TorchPredictor, staging: Path, manifest: dict) -> float:
    texts = [text for _, text, _ in CASES] + ["가" * 300, "ㅋ"]
    expected = predictor.logits(texts, batch_size=16)
    onnx = OnnxPredictor(staging, {**manifest, "served_file": FP32_FILE}, threads=None)
    actual = onnx.logits(texts, batch_size=16)
    difference = float(np.abs(actual - expected).max())
    if difference > PARITY_TOLERANCE:
        raise ModelError(
            f"ONNX export does not match PyTorch (max |logit difference| {difference:.2e} > "
            f"{PARITY_TOLERANCE:.0e}); the bundle was not written."
        )
    return difference


def _accuracy(staging: Path, manifest: dict, file: str, labelled: pd.DataFrame) -> float:
    predictor = OnnxPredictor(staging, {**manifest, "served_file": file})
    probability = positive_probability(
        predictor.logits(list(labelled["text"])).astype(np.float64), predictor.label_map
    )
    return float(((probability >= 0.5).astype(int) == labelled["label"].to_numpy()).mean())


def _draft_manifest(predictor: TorchPredictor) -> dict:
    tokenizer = predictor.tokenizer
    return {
        "format": BUNDLE_FORMAT,
        "max_length": int(predictor.max_length),
        "pad_id": int(tokenizer.pad_token_id),
        "pad_token": str(tokenizer.pad_token),
        "inputs": ["input_ids", "attention_mask"],
        "outputs": ["logits"],
        "cpu_flags": _cpu_flags(),
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def _cpu_flags() -> list[str]:
    """The CPU features INT8 speed and exactness depend on (VNNI avoids u8s8 saturation)."""
    wanted = {"avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8"}
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return []
    return sorted(wanted & set(text.split()))
