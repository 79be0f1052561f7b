"""A quick size and latency profile of the three formats a trained model exists in.

PyTorch FP32 (the fine-tuned directory), ONNX FP32 and ONNX INT8 (the serving bundle)
are timed on the same real reviews at batch 1 and batch 32, tokenization included, after
one warm-up call; the median of a few repeats is kept. This is what every training run
records in MLflow — short enough to run at registration. The thorough, time-based
measurement on the benchmark model is ``benchmarks/quantize_benchmark.py``.
"""

from __future__ import annotations

import functools
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from cinesense.errors import ModelError
from cinesense.model.onnx_predict import OnnxPredictor, verify_bundle

FORMATS = ("pytorch_fp32", "onnx_fp32", "onnx_int8")
BATCH_SIZES = (1, 32)
ONNX_FILES = {"onnx_fp32": "model.fp32.onnx", "onnx_int8": "model.int8.onnx"}


def median_ms(run: Callable[[list[str]], object], batch: list[str], repeats: int) -> float:
    """Median wall time of ``run(batch)`` in milliseconds, after one warm-up call."""
    run(batch)
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        run(batch)
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def _onnx_logits(predictor: OnnxPredictor, batch: list[str]) -> object:
    return predictor.logits(batch, batch_size=len(batch))


def profile_formats(
    model_dir: Path,
    bundle_dir: Path,
    texts: Sequence[str],
    repeats: int = 3,
    threads: int | None = None,
    batch_sizes: Sequence[int] = BATCH_SIZES,
) -> dict[str, float]:
    """Sizes (MB) and latencies (ms per batch) of PyTorch FP32, ONNX FP32 and ONNX INT8.

    Metric names: ``size_mb_<format>``, ``latency_ms_<format>_batch<n>`` and
    ``reviews_per_s_<format>_batch<n>``; ``<format>`` is one of :data:`FORMATS`.
    """
    from cinesense.model.predict import TorchPredictor

    reviews = [t for t in texts if str(t).strip()]
    if not reviews:
        raise ModelError("No review texts to time the model formats on.")
    manifest = verify_bundle(bundle_dir)
    weights = Path(model_dir) / "model.safetensors"
    metrics = {
        "size_mb_pytorch_fp32": weights.stat().st_size / 2**20 if weights.exists() else None,
        **{
            f"size_mb_{name}": manifest["files"][file]["bytes"] / 2**20
            for name, file in ONNX_FILES.items()
            if file in manifest["files"]
        },
    }
    torch_predictor = TorchPredictor.from_directory(model_dir)
    runners: dict[str, Callable[[list[str]], object]] = {
        "pytorch_fp32": lambda batch: torch_predictor.logits(batch, batch_size=len(batch))
    }
    for name, file in ONNX_FILES.items():
        if file in manifest["files"]:
            predictor = OnnxPredictor(bundle_dir, {**manifest, "served_file": file}, threads)
            runners[name] = functools.partial(_onnx_logits, predictor)
    for size in batch_sizes:
        batch = [reviews[i % len(reviews)] for i in range(size)]
        for name, run in runners.items():
            milliseconds = median_ms(run, batch, repeats)
            metrics[f"latency_ms_{name}_batch{size}"] = milliseconds
            metrics[f"reviews_per_s_{name}_batch{size}"] = size / milliseconds * 1000
    return {key: round(value, 3) for key, value in metrics.items() if value is not None}
