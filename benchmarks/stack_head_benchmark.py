"""Stack-head benchmark: an n-gram head stacked on the shipped bundle, evaluated, shipped.

    python benchmarks/stack_head_benchmark.py --corpus ../shared/data/naver_movie_reviews.tsv.gz

Takes the serving bundle the package ships (src/cinesense/default_model; when that bundle
already carries a stacked head, its base graph), trains the character- and token-n-gram
head of :mod:`cinesense.model.stacking` on the train split, chooses its epoch and mix on
the validation split and writes the stacked bundle to --work-dir/stacked-serving. Then it
scores that bundle exactly as ``cinesense evaluate --bundle DIR`` does (the test movies,
beside the TF-IDF baseline), times single-review predictions, and ships the bundle as the
package's default model when its validation accuracy is at least the shipped model's
(the test split only reports). Writes the ``stack_head`` entry of benchmarks/results.json
and benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from cinesense.config import Settings
from cinesense.data.dataset import load_dataset
from cinesense.model.loop import set_threads
from cinesense.model.onnx_predict import OnnxPredictor, verify_bundle
from cinesense.model.stacking import HeadTraining, NgramConfig, stack_bundle
from cinesense.pipelines.train import evaluate_served

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results import update_markdown, write_entry
from train_benchmark import (
    DEFAULT_MODEL,
    TRAINING_FIGURES,
    report_figures,
    served_accuracy,
    ship,
    stage_dataset,
)

log = logging.getLogger("stack_head_benchmark")
LATENCY_REVIEWS = 200


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--corpus", type=Path, default=Path("../shared/data/naver_movie_reviews.tsv.gz")
    )
    parser.add_argument("--work-dir", type=Path, default=Path.home() / ".cache/cinesense-bench")
    parser.add_argument(
        "--bundle", type=Path, default=DEFAULT_MODEL, help="The bundle to stack the head on."
    )
    parser.add_argument("--buckets", type=int, default=NgramConfig.buckets)
    parser.add_argument("--char-orders", default="1,2,3,4")
    parser.add_argument("--token-orders", default="1,2")
    parser.add_argument("--epochs", type=int, default=HeadTraining.epochs)
    parser.add_argument("--learning-rate", type=float, default=HeadTraining.learning_rate)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--force-ship",
        action="store_true",
        help="Ship even when the shipped model scored higher on validation.",
    )
    parser.add_argument("--stop-after", choices=["stack", "evaluate", "ship"], default="ship")
    return parser.parse_args()


def _orders(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split(",") if part.strip())


def stage_stack(args: argparse.Namespace, dataset_dir: Path) -> Path:
    config = NgramConfig(args.buckets, _orders(args.char_orders), _orders(args.token_orders))
    training = HeadTraining(epochs=args.epochs, learning_rate=args.learning_rate)
    out = args.work_dir / "stacked-serving"
    result = stack_bundle(
        args.bundle, load_dataset(dataset_dir), out, config, training, threads=args.threads
    )
    report = result.report
    log.info(
        "stack: mix %s; validation base %.4f, head %.4f, stacked %.4f (sample %.4f)",
        report["mix"],
        report["validation_accuracy_base"],
        report["validation_accuracy_head"],
        report["validation_accuracy_served"],
        report["validation_sample_accuracy"],
    )
    return out


def latency_ms(bundle: Path, texts: list[str], threads: int) -> dict[str, float]:
    """p50/p95 of one review per call (the service at concurrency 1, without HTTP)."""
    predictor = OnnxPredictor.from_bundle(bundle, threads=threads)
    for text in texts[:20]:
        predictor.predict([text])
    times = []
    for text in texts:
        started = time.perf_counter()
        predictor.predict([text])
        times.append((time.perf_counter() - started) * 1000)
    return {
        "p50": round(float(np.percentile(times, 50)), 2),
        "p95": round(float(np.percentile(times, 95)), 2),
    }


def stage_evaluate(
    args: argparse.Namespace, settings: Settings, dataset_dir: Path, bundle: Path
) -> dict[str, Any]:
    started = time.monotonic()
    report = evaluate_served(settings, dataset_dir, bundle=bundle, with_baseline=True)
    log.info("evaluate: %.1f min", (time.monotonic() - started) / 60)
    (args.work_dir / "stack_head_evaluation.json").write_text(
        json.dumps(report, ensure_ascii=False, indent=2, default=str)
    )
    model: dict[str, Any] = report["model"]  # type: ignore[assignment]
    baseline: dict[str, Any] = report["baseline"]  # type: ignore[assignment]
    manifest = verify_bundle(bundle)
    head = manifest["stacked_head"]
    test = load_dataset(dataset_dir)["test"]
    texts = test["text"].sample(n=LATENCY_REVIEWS, random_state=settings.data.seed)
    latency = latency_ms(bundle, list(texts), args.threads)
    # The bundle the head was stacked on, timed alike (unless it carries a stacked head).
    stacked_already = "stacked_head" in verify_bundle(args.bundle)
    base_latency = {} if stacked_already else latency_ms(args.bundle, list(texts), args.threads)
    served_mb = sum(m["bytes"] for m in manifest["files"].values()) / 2**20
    return {
        **report_figures(model, baseline),
        "validation_accuracy": head["validation_sample_accuracy"],
        "validation_accuracy_base": head["validation_sample_accuracy_base"],
        "validation_balanced_accuracy": head["validation_accuracy_served"],
        "validation_balanced_accuracy_base": head["validation_accuracy_base"],
        "validation_accuracy_head": head["validation_accuracy_head"],
        "mix": head["mix"],
        "buckets": head["buckets"],
        "head_minutes": head["minutes"],
        "int8_accuracy": round(served_accuracy(bundle, test, settings.data.seed), 5),
        "bundle_mb": round(served_mb, 2),
        "latency_p50_ms": latency["p50"],
        "latency_p95_ms": latency["p95"],
        **{f"base_latency_{k}_ms": v for k, v in base_latency.items()},
    }


def stage_ship(args: argparse.Namespace, bundle: Path, dataset_dir: Path, metrics: dict) -> bool:
    """Ship the stacked bundle as the package's default model unless the shipped model did
    better on validation (the 8,000-review validation sample both are scored on); the
    ``train`` entry keeps describing the model train_benchmark.py shipped."""
    shipped = json.loads((DEFAULT_MODEL / "manifest.json").read_text()).get("shipped", {})
    shipped_validation = shipped.get("benchmark", {}).get("validation_accuracy")
    better = shipped_validation is None or metrics["validation_accuracy"] >= shipped_validation
    if not (better or args.force_ship):
        log.warning(
            "ship: not shipped: validation accuracy %.4f is below the shipped model's %.4f",
            metrics["validation_accuracy"],
            shipped_validation,
        )
        return False
    manifest = verify_bundle(bundle)
    head = manifest["stacked_head"]
    # the lineage of the graph stacked on: the given bundle's own when it was shipped
    base_shipped = verify_bundle(args.bundle).get("shipped") or head["base"].get("shipped") or {}
    base_command = base_shipped.get("command", "")
    command = "python benchmarks/stack_head_benchmark.py " + " ".join(sys.argv[1:])
    history = (
        f"The base graph (BERT + wide head, shipped {head['base']['created_at']}; "
        f"{base_shipped.get('history', '')}) with an n-gram head stacked on it by "
        f"benchmarks/stack_head_benchmark.py (model/stacking.py): character 1-4-grams and "
        f"token 1-2-grams, {head['buckets']} INT8 buckets, trained {head['minutes']} min "
        f"on the train split, mixed at {head['mix']} (chosen on validation). Validation "
        f"sample accuracy {metrics['validation_accuracy_base']} -> "
        f"{metrics['validation_accuracy']} (served INT8 graphs)."
    )
    # the BERT is the base's, and so is its training
    base_figures = base_shipped.get("benchmark", {})
    training = {name: base_figures[name] for name in TRAINING_FIGURES if name in base_figures}
    ship(
        bundle,
        load_dataset(dataset_dir),
        {**training, **metrics},
        f"{base_command} && {command}" if base_command else command,
        history,
    )
    return True


def write_markdown(metrics: dict, shipped: bool | None) -> None:
    lines = [
        "## stack_head — an n-gram head stacked on the shipped bundle (model/stacking.py)",
        "",
        f"Date: {time.strftime('%Y-%m-%d')}. Command: `python benchmarks/stack_head_benchmark.py "
        f"{' '.join(sys.argv[1:])}`",
        "",
        f"Test: {metrics['test_reviews']} class-balanced labelled reviews and "
        f"{metrics['test_rated_reviews']} rated reviews from {metrics['test_movies']} movies, "
        "scored as `cinesense evaluate --bundle` scores them.",
        "",
        "| | stacked bundle | TF-IDF baseline |",
        "|---|---|---|",
        f"| binary accuracy (balanced) | {metrics['accuracy']:.4f} | "
        f"{metrics['baseline_accuracy']:.4f} |",
        f"| macro-F1 | {metrics['macro_f1']:.4f} | — |",
        f"| rating MAE | {metrics['rating_mae']:.3f} | — |",
        f"| label/rating contradictions | {metrics['label_rating_contradictions']:.4f} | — |",
        "",
        f"Validation (8,000-review sample of the train benchmark): {metrics['validation_accuracy']}"
        f" (the bundle it was stacked on: {metrics['validation_accuracy_base']}); "
        f"{metrics['validation_balanced_accuracy']} vs "
        f"{metrics['validation_balanced_accuracy_base']} on the whole class-balanced "
        "validation split; the head alone "
        f"{metrics['validation_accuracy_head']}; mix {metrics['mix']}, {metrics['buckets']} "
        f"buckets. Bundle {metrics['bundle_mb']} MB. One review per call: p50 "
        f"{metrics['latency_p50_ms']} ms, p95 {metrics['latency_p95_ms']} ms"
        + (
            f" (the bundle it was stacked on: {metrics['base_latency_p50_ms']} / "
            f"{metrics['base_latency_p95_ms']} ms)."
            if "base_latency_p50_ms" in metrics
            else "."
        )
        + (
            ""
            if shipped is None
            else f" Shipped as the default model: {'yes' if shipped else 'no'}."
        ),
        "",
    ]
    update_markdown("stack_head", lines)


def main() -> None:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(name)s %(message)s", stream=sys.stderr
    )
    args = parse_args()
    set_threads(args.threads)
    settings = Settings()
    args.work_dir.mkdir(parents=True, exist_ok=True)
    dataset_dir = stage_dataset(args, settings)
    bundle = stage_stack(args, dataset_dir)
    if args.stop_after == "stack":
        return
    metrics = stage_evaluate(args, settings, dataset_dir, bundle)
    shipped = (
        None if args.stop_after == "evaluate" else stage_ship(args, bundle, dataset_dir, metrics)
    )
    write_entry("stack_head", {**metrics, "shipped": int(bool(shipped))}, threads=args.threads)
    write_markdown(metrics, shipped)


if __name__ == "__main__":
    main()
