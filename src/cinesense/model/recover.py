"""Take a serving bundle's BERT back to a trainable Hugging Face directory.

A fresh install has the shipped bundle but no PyTorch model: its pretraining took hours.
This reads the BERT classifier out of the bundle's ONNX graph (FP32 or INT8, fused by ONNX
Runtime's BERT optimizer, with or without a wide or stacked n-gram head) so that training
can go on from it — a second fine-tuning stage, or fine-tuning on newly crawled reviews —
instead of starting from a base model.

INT8 weights are dequantized (``(q - zero_point) * scale``); the fused attention's one
query-key-value matrix is split back into three. The n-gram heads are left behind: the
fine-tuning that follows trains a new wide head. The result is checked against the graph
itself: the classifier logits of the recovered model and of the ONNX graph must agree on
review texts (``max_logit_difference`` in the written ``recovered.json``).
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from cinesense.errors import ModelError
from cinesense.files import atomic_directory
from cinesense.model.behaviour import CASES
from cinesense.model.heads import LABEL_MAP_FILE, NUM_RATINGS, LabelMap
from cinesense.model.onnx_predict import verify_bundle
from cinesense.model.rating import CALIBRATION_FILE
from cinesense.text import normalize_review

log = logging.getLogger(__name__)
RECOVERED = "recovered.json"
WORD_EMBEDDINGS = "bert.embeddings.word_embeddings.weight"
CLASSIFIER_LOGITS = "/classifier/Gemm_output_0"  # the classifier's output, under the prefix
# Dynamic INT8 quantizes activations at run time too, so the graph's logits differ from
# those of its own weights run in FP32 by more than an FP32 export's parity tolerance.
MAX_LOGIT_DIFFERENCE = {"fp32": 1e-3, "int8": 0.5}


class _Weights:
    """The graph's initializers by name, INT8 ones dequantized."""

    def __init__(self, graph) -> None:
        from onnx import numpy_helper

        self.tensors = {t.name: numpy_helper.to_array(t) for t in graph.initializer}

    def __getitem__(self, name: str) -> np.ndarray:
        if name.endswith("_quantized"):
            name = name[: -len("_quantized")]
        if name in self.tensors:
            return self.tensors[name].astype(np.float32)
        quantized = self.tensors[name + "_quantized"].astype(np.float32)
        zero_point = self.tensors[name + "_zero_point"].astype(np.float32)
        return (quantized - zero_point) * self.tensors[name + "_scale"].astype(np.float32)


def recover_classifier(bundle_dir: Path, out_dir: Path) -> dict:
    """Write the bundle's BERT classifier to ``out_dir`` as a Hugging Face directory."""
    import onnx

    from cinesense.model.stacking import base_model

    manifest = verify_bundle(bundle_dir)
    model = base_model(onnx.load(str(Path(bundle_dir) / manifest["served_file"])))
    weights = _Weights(model.graph)
    prefix = _prefix(weights)
    config, state = _state_dict(model.graph, weights, prefix)
    with atomic_directory(out_dir) as staging:
        classifier = _classifier(config, state)
        tokenizer = _tokenizer(Path(bundle_dir), manifest["max_length"])
        classifier.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        for name in (LABEL_MAP_FILE, CALIBRATION_FILE):
            shutil.copy(Path(bundle_dir) / name, staging / name)
        difference = _check(model, prefix, classifier, tokenizer, manifest)
        limit = MAX_LOGIT_DIFFERENCE[manifest["served"]]
        if difference > limit:
            raise ModelError(
                f"The model recovered from {bundle_dir} does not reproduce its graph (max "
                f"|logit difference| {difference:.3g} > {limit}); nothing was written."
            )
        report = {
            "recovered_from": str(bundle_dir),
            "served_file": manifest["served_file"],
            "served_file_sha256": manifest["files"][manifest["served_file"]]["sha256"],
            "served": manifest["served"],
            "max_logit_difference": round(difference, 5),
            "parameters": int(sum(p.numel() for p in classifier.parameters())),
        }
        (staging / RECOVERED).write_text(json.dumps(report, indent=2))
    log.info("recovered %s → %s (max logit difference %.3g)", bundle_dir, out_dir, difference)
    return report


def _prefix(weights: _Weights) -> str:
    names = [n for n in weights.tensors if n.removesuffix("_quantized").endswith(WORD_EMBEDDINGS)]
    if len(names) != 1:
        raise ModelError("The bundle's graph holds no BERT word embeddings to recover.")
    return names[0].removesuffix("_quantized")[: -len(WORD_EMBEDDINGS)]


def _state_dict(graph, weights: _Weights, prefix: str) -> tuple[dict, dict[str, np.ndarray]]:
    state = {
        name[len(prefix) :]: weights[name]
        for name in weights.tensors
        if name.startswith(prefix) and not name.endswith(("_scale", "_zero_point"))
    }
    state = {name.removesuffix("_quantized"): value for name, value in state.items()}
    attention = [n for n in graph.node if n.op_type in ("Attention", "QAttention")]
    if not attention:
        raise ModelError("The bundle's graph has no fused attention (not an optimized BERT).")
    for layer, node in enumerate(attention):
        qkv, bias = weights[node.input[1]], weights[node.input[2]]
        for part, name in enumerate(("query", "key", "value")):
            key = f"bert.encoder.layer.{layer}.attention.self.{name}"
            columns = slice(part * qkv.shape[1] // 3, (part + 1) * qkv.shape[1] // 3)
            state[key + ".weight"] = qkv[:, columns].T
            state[key + ".bias"] = bias[columns]
    node_prefix = _node_prefix(prefix)
    for node in graph.node:
        if node.op_type in ("MatMul", "MatMulInteger") and node.input[1] in weights.tensors:
            module = node.name[len(node_prefix) :].strip("/").rsplit("/", 1)[0]
            state[module.replace("/", ".") + ".weight"] = weights[node.input[1]].T
    heads = {a.i for node in attention for a in node.attribute if a.name == "num_heads"}
    config = {
        "vocab_size": state["bert.embeddings.word_embeddings.weight"].shape[0],
        "hidden_size": state["bert.embeddings.word_embeddings.weight"].shape[1],
        "num_hidden_layers": len(attention),
        "num_attention_heads": heads.pop(),
        "intermediate_size": state["bert.encoder.layer.0.intermediate.dense.weight"].shape[0],
        "max_position_embeddings": state["bert.embeddings.position_embeddings.weight"].shape[0],
        "type_vocab_size": state["bert.embeddings.token_type_embeddings.weight"].shape[0],
    }
    return config, state


def _classifier(config: dict, state: dict[str, np.ndarray]):
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    id2label = LabelMap().id2label()  # rating_1 … rating_10, whatever the thresholds
    labels: dict[str, Any] = {
        "num_labels": NUM_RATINGS,
        "id2label": id2label,
        "label2id": {v: k for k, v in id2label.items()},
    }
    model = BertForSequenceClassification(BertConfig(**config, **labels))
    expected = set(model.state_dict())
    wanted = {k: v for k, v in state.items() if k in expected}
    missing = expected - set(wanted) - {"bert.embeddings.position_ids"}
    if missing:
        raise ModelError(f"The bundle's graph lacks weights for: {', '.join(sorted(missing))}.")
    model.load_state_dict(
        {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in wanted.items()}, strict=False
    )
    return model.eval()


def _tokenizer(bundle_dir: Path, max_length: int):
    from tokenizers import Tokenizer
    from transformers import BertTokenizer

    return BertTokenizer(
        tokenizer_object=Tokenizer.from_file(str(bundle_dir / "tokenizer.json")),
        do_lower_case=False,
        strip_accents=False,
        tokenize_chinese_chars=True,
        model_max_length=max_length,
    )


def _check(model, prefix: str, classifier, tokenizer, manifest: dict) -> float:
    """Max |difference| between the graph's classifier logits and the recovered model's."""
    import onnx
    import onnxruntime as ort
    import torch

    from cinesense.model.stacking import pad_ids

    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    name = _node_prefix(prefix) + CLASSIFIER_LOGITS
    del probe.graph.output[:]
    probe.graph.output.extend(
        [onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None)]
    )
    session = ort.InferenceSession(probe.SerializeToString(), providers=["CPUExecutionProvider"])
    texts = [normalize_review(text) for _, text, _ in CASES]
    ids = tokenizer(texts, truncation=True, max_length=manifest["max_length"])["input_ids"]
    input_ids, mask = pad_ids(ids, manifest["pad_id"])
    (graph_logits,) = session.run(None, {"input_ids": input_ids, "attention_mask": mask})
    with torch.no_grad():
        logits = classifier(
            input_ids=torch.from_numpy(input_ids), attention_mask=torch.from_numpy(mask)
        ).logits.numpy()
    return float(np.abs(graph_logits - logits).max())


def _node_prefix(prefix: str) -> str:
    """``bert.`` (a parameter-name prefix) → ``/bert`` (the node-name prefix of the same module)."""
    return "/" + prefix.rstrip(".").replace(".", "/") if prefix else ""
