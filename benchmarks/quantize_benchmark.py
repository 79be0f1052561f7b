"""Quantize benchmark: PyTorch FP32 vs ONNX FP32 vs ONNX INT8 on the benchmark model.

    python benchmarks/quantize_benchmark.py

Needs the outputs of train_benchmark.py in --work-dir (the fine-tuned small model and its
dataset). Builds the serving bundle (export, optimize, quantize, parity, INT8
re-evaluation on test movies), then times each format on real test reviews at batch 1
and batch 32 with --threads CPU threads, tokenization included, beside the bundle the
package ships (src/cinesense/default_model: that INT8 graph with the n-gram head stacked
on it), whose accuracy is measured on the same test reviews. Writes the ``quantize`` entry
of benchmarks/results.json and a section of benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Callable
from pathlib import Path

from cinesense.data.dataset import load_dataset
from cinesense.files import sha256_file
from cinesense.model.export import FP32_FILE, INT8_FILE, build_serving_bundle
from cinesense.model.loop import set_threads
from cinesense.model.onnx_predict import OnnxPredictor, verify_bundle
from cinesense.model.predict import TorchPredictor

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results import RESULTS, update_markdown, write_entry
from train_benchmark import DEFAULT_MODEL, served_accuracy

log = logging.getLogger("quantize_benchmark")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work-dir", type=Path, default=Path.home() / ".cache/cinesense-bench")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=20.0, help="Timing per configuration.")
    return parser.parse_args()


def throughput(
    run: Callable[[list[str]], object], texts: list[str], batch: int, seconds: float
) -> dict[str, float]:
    """Reviews per second and mean batch latency, after one warm-up batch."""
    run(texts[:batch])
    done, batches, started = 0, 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        start = (batches * batch) % (len(texts) - batch)
        run(texts[start : start + batch])
        done += batch
        batches += 1
    elapsed = time.perf_counter() - started
    return {"reviews_per_s": done / elapsed, "batch_ms": elapsed / batches * 1000}


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    args = parse_args()
    set_threads(args.threads)
    model_dir = args.work_dir / "sentiment-small"
    bundle_dir = args.work_dir / "serving-small"
    test = load_dataset(args.work_dir / "dataset")["test"]
    manifest = build_serving_bundle(model_dir, bundle_dir, test)
    texts = test["text"].sample(n=4000, random_state=1).tolist()

    torch_predictor = TorchPredictor.from_directory(model_dir)
    formats: dict[str, Callable[[list[str]], object]] = {
        "pytorch_fp32": lambda batch: torch_predictor.logits(batch, batch_size=len(batch))
    }
    for name, file in (("onnx_fp32", FP32_FILE), ("onnx_int8", INT8_FILE)):
        predictor = OnnxPredictor(bundle_dir, {**manifest, "served_file": file}, args.threads)
        formats[name] = lambda batch, p=predictor: p.logits(batch, batch_size=len(batch))
    shipped = OnnxPredictor.from_bundle(DEFAULT_MODEL, threads=args.threads)
    formats["shipped_int8"] = lambda batch: shipped.logits(batch, batch_size=len(batch))
    timings = {
        (name, batch): throughput(run, texts, batch, args.seconds)
        for name, run in formats.items()
        for batch in (1, 32)
    }
    for (name, batch), timing in timings.items():
        log.info("%s batch %d: %.1f reviews/s", name, batch, timing["reviews_per_s"])

    def rate(name: str, batch: int) -> float:
        return timings[(name, batch)]["reviews_per_s"]

    sizes = {name: meta["bytes"] for name, meta in manifest["files"].items()}
    shipped_manifest = verify_bundle(DEFAULT_MODEL)
    stacked_on = (shipped_manifest.get("stacked_head") or {}).get("base", {})
    metrics = {
        "int8_speedup_batch32": round(rate("onnx_int8", 32) / rate("pytorch_fp32", 32), 2),
        "onnx_fp32_speedup_batch32": round(rate("onnx_fp32", 32) / rate("pytorch_fp32", 32), 2),
        "int8_speedup_batch1": round(rate("onnx_int8", 1) / rate("pytorch_fp32", 1), 2),
        "int8_size_ratio": round(sizes[INT8_FILE] / sizes[FP32_FILE], 3),
        "int8_accuracy_delta": round(manifest["accuracy_delta"], 4),
        "accuracy_fp32": round(manifest["accuracy_fp32"], 4),
        "accuracy_int8": round(manifest["accuracy_int8"], 4),
        "evaluation_reviews": manifest["evaluation_reviews"],
        "parity_max_abs_diff": manifest["parity_max_abs_diff"],
        "pytorch_mb": round((model_dir / "model.safetensors").stat().st_size / 2**20, 2),
        "onnx_fp32_mb": round(sizes[FP32_FILE] / 2**20, 2),
        "onnx_int8_mb": round(sizes[INT8_FILE] / 2**20, 2),
        "shipped_int8_mb": round(
            shipped_manifest["files"][shipped_manifest["served_file"]]["bytes"] / 2**20, 2
        ),
        "shipped_accuracy": round(served_accuracy(DEFAULT_MODEL, test, seed=13), 4),
        "shipped_is_stacked_on_this_int8": int(
            stacked_on.get("served_file_sha256") == sha256_file(bundle_dir / INT8_FILE)
        ),
        **{
            f"{name}_batch{batch}_reviews_per_s": round(timing["reviews_per_s"], 1)
            for (name, batch), timing in timings.items()
        },
        **{f"{name}_batch1_ms": round(timings[(name, 1)]["batch_ms"], 2) for name in formats},
    }
    write_entry("quantize", metrics, threads=args.threads)
    entry = json.loads(RESULTS.read_text())["benchmarks"]["quantize"]
    rows = "\n".join(
        f"| {name} | {metrics[f'{name}_batch1_ms']} | {metrics[f'{name}_batch32_reviews_per_s']} "
        f"| {metrics['pytorch_mb' if name == 'pytorch_fp32' else name + '_mb']} |"
        for name in formats
    )
    update_markdown(
        "quantize",
        [
            "## quantize — ONNX Runtime FP32 and dynamic INT8 vs PyTorch FP32",
            "",
            f"Machine: {entry['machine']}. Date: {entry['date']}. Command: `{entry['command']}`",
            "",
            "| format | batch 1 latency (ms) | batch 32 throughput (reviews/s) | size (MB) |",
            "|---|---|---|---|",
            rows,
            "",
            f"INT8 vs PyTorch FP32 at batch 32: {metrics['int8_speedup_batch32']}×; ONNX FP32: "
            f"{metrics['onnx_fp32_speedup_batch32']}×. INT8 size is {metrics['int8_size_ratio']} "
            f"of FP32 ONNX. Accuracy on {metrics['evaluation_reviews']} balanced test reviews: "
            f"FP32 {metrics['accuracy_fp32']}, INT8 {metrics['accuracy_int8']} (change "
            f"{metrics['int8_accuracy_delta'] * 100:+.2f} points). Served: {manifest['served']} "
            f"({manifest['reason']}).",
            "",
            f"shipped_int8 is the bundle the package ships (src/cinesense/default_model): "
            f"{'this' if metrics['shipped_is_stacked_on_this_int8'] else 'another'} INT8 graph "
            f"with the n-gram head of model/stacking.py stacked on it. Its accuracy on the same "
            f"{metrics['evaluation_reviews']} test reviews: {metrics['shipped_accuracy']}.",
            "",
        ],
    )


if __name__ == "__main__":
    main()
