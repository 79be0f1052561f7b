"""Train benchmark: dataset → base → fine-tune → evaluate → ship, on the full corpus.

    python benchmarks/train_benchmark.py --corpus ../shared/data/naver_movie_reviews.tsv.gz

The base is the self-built BERT (pretrained here) or, with --from-bundle, the BERT of a
serving bundle (a second fine-tuning stage). The ship stage exports the fine-tuned model
to INT8, stacks the n-gram head of model/stacking.py on it and scores that bundle as the
service serves it; those are the ``train`` entry's figures (the PyTorch model's beside
them), and the bundle becomes the package's default model when it beats the shipped one
on validation. Runs on the CPU (2 cores in the committed results) with no network. Every
stage keeps its output in --work-dir (default ~/.cache/cinesense-bench) and is skipped
when that output already exists for the same data and settings, so the one-off
pretraining is not repeated; pretraining and fine-tuning checkpoint every 10 minutes, and
the same command resumes a run that was cut off. Writes the ``train`` entry of
benchmarks/results.json and benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from cinesense.config import PretrainSettings, Settings, TrainSettings
from cinesense.data.corpus import read_corpus
from cinesense.data.dataset import build_dataset, load_dataset, save_dataset
from cinesense.model.export import MAX_EVALUATION_REVIEWS, build_serving_bundle
from cinesense.model.finetune import add_wide_head, finetune
from cinesense.model.heads import TRAINING_MANIFEST
from cinesense.model.loop import set_threads
from cinesense.model.onnx_predict import OnnxPredictor, verify_bundle
from cinesense.model.pretrain import MANIFEST, pretrain, text_fingerprint
from cinesense.model.recover import recover_classifier
from cinesense.model.report import evaluation_report
from cinesense.model.shipping import write_shipped_bundle
from cinesense.model.stacking import stack_bundle
from cinesense.model.wide import WIDE_CONFIG
from cinesense.pipelines.train import evaluate_served

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results import RESULTS, update_markdown, write_entry

log = logging.getLogger("train_benchmark")
DEFAULT_MODEL = Path(__file__).resolve().parents[1] / "src/cinesense/default_model"
PYTORCH_FIGURES = ("accuracy", "macro_f1", "rating_mae", "behaviour_pass_rate", "roc_auc", "ece")
TRAINING_FIGURES = ("pretrain_minutes", "pretrain_steps", "finetune_minutes", "finetune_steps")
EARLIER_TRAINING = "earlier_training.json"  # beside a recovered base: its model's training
SHIPPED_FIGURES = (
    *TRAINING_FIGURES,
    "validation_accuracy",
    "accuracy",
    "baseline_accuracy",
    "macro_f1",
    "rating_mae",
    "label_rating_contradictions",
    "test_movies",
    "test_reviews",
)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--corpus", type=Path, default=Path("../shared/data/naver_movie_reviews.tsv.gz")
    )
    parser.add_argument("--work-dir", type=Path, default=Path.home() / ".cache/cinesense-bench")
    parser.add_argument("--pretrain-minutes", type=float, default=80.0)
    parser.add_argument(
        "--pretrain-steps",
        type=int,
        default=None,
        help="Budget pretraining in steps instead of minutes (for runs over several "
        "sittings on a shared machine; the checkpoint carries the progress).",
    )
    parser.add_argument(
        "--whole-word-mask",
        action="store_true",
        help="Mask whole words in pretraining (measured 2026-12-02: the loss stayed on the "
        "unigram plateau for 2,600 steps; token masking is the measured recipe).",
    )
    parser.add_argument("--finetune-minutes", type=float, default=40.0)
    parser.add_argument("--learning-rate", type=float, default=2e-4)
    parser.add_argument(
        "--reuse-finetuned",
        action="store_true",
        help="Keep the fine-tuned model already in --work-dir (give it a wide head if it "
        "has none) instead of fine-tuning again.",
    )
    parser.add_argument(
        "--force-ship",
        action="store_true",
        help="Ship even when the shipped model scored higher on validation.",
    )
    parser.add_argument(
        "--shuffle-seed",
        type=int,
        default=None,
        help="Order of the training reviews (default: the seed, 13). A second fine-tuning "
        "stage from --base-dir reads other reviews first under another one.",
    )
    parser.add_argument(
        "--average-decay",
        type=float,
        default=None,
        help="Validate and keep an exponential moving average of the fine-tuned weights "
        "with this decay per step (for example 0.999) instead of the latest weights.",
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--bf16",
        action="store_true",
        help="Pretrain and fine-tune in bfloat16 autocast where the CPU has native bfloat16 "
        "(measured in the precision section of RESULTS.md).",
    )
    parser.add_argument(
        "--base-dir",
        type=Path,
        default=None,
        help="Fine-tune from this base (for example a pretraining checkpoint) instead of "
        "the pretraining stage's output.",
    )
    parser.add_argument(
        "--from-bundle",
        type=Path,
        default=None,
        help="Fine-tune on from the BERT inside this serving bundle (for example the shipped "
        "src/cinesense/default_model), recovered by cinesense.model.recover: a second "
        "fine-tuning stage without the PyTorch model or its pretraining.",
    )
    parser.add_argument(
        "--stop-after",
        choices=["dataset", "pretrain", "finetune", "evaluate", "ship"],
        default="ship",
        help="ship: also write the model's slim serving bundle to the package's default "
        "model (src/cinesense/default_model), the champion of a fresh install.",
    )
    return parser.parse_args()


def stage_dataset(args: argparse.Namespace, settings: Settings) -> Path:
    directory = args.work_dir / "dataset"
    if (directory / "manifest.json").exists():
        log.info("dataset: reusing %s", directory)
        return directory
    started = time.monotonic()
    dataset = build_dataset(read_corpus(args.corpus), settings.data)
    save_dataset(dataset, directory)
    log.info("dataset: %s in %.1f min", dataset.manifest.sizes, (time.monotonic() - started) / 60)
    return directory


def stage_pretrain(args: argparse.Namespace, dataset_dir: Path) -> Path:
    """Pretrain on train + validation text only: test movies stay unseen, even unlabelled.

    Reuses a finished base made from the same text with at least this budget; otherwise
    pretrains, resuming from the checkpoint a shorter or interrupted run left behind.
    """
    directory = args.work_dir / "base-small"
    dataset = load_dataset(dataset_dir)
    texts = [*dataset["train"]["text"], *dataset["validation"]["text"]]
    settings = PretrainSettings(
        preset="small",
        epochs=10,
        whole_word_mask=args.whole_word_mask,
        max_steps=args.pretrain_steps,
        max_minutes=None if args.pretrain_steps else args.pretrain_minutes,
        bf16=args.bf16,
    )
    manifest_path = directory / MANIFEST
    if manifest_path.exists():
        manifest = json.loads(manifest_path.read_text())
        same_text = manifest["data_fingerprint"] == text_fingerprint(texts)
        if same_text and _budget_reached(manifest["settings"], settings):
            log.info("pretrain: reusing %s (%.1f min)", directory, manifest["minutes"])
            return directory
    result = pretrain(
        texts, directory, settings, {"dataset": dataset.manifest.fingerprint}, progress=False
    )
    log.info(
        "pretrain: %d steps, loss %.3f, %.1f min", result.steps, result.final_loss, result.minutes
    )
    return directory


def stage_base(args: argparse.Namespace, dataset_dir: Path) -> Path:
    if not args.from_bundle:
        return stage_pretrain(args, dataset_dir)
    directory = args.work_dir / "recovered"
    report = recover_classifier(args.from_bundle, directory)
    log.info("base: recovered from %s (%s)", args.from_bundle, report)
    (directory / EARLIER_TRAINING).write_text(json.dumps(_earlier_training(args.from_bundle)))
    return directory


def _finetuning(base_dir: Path, train_manifest: dict) -> dict[str, float]:
    """Fine-tuning minutes and steps; for a recovered base, the earlier stage's added in
    (and each stage's kept)."""
    this = {
        "finetune_minutes": train_manifest["minutes"],
        "finetune_steps": train_manifest["steps"],
    }
    if not (base_dir / EARLIER_TRAINING).exists():
        return this
    earlier = json.loads((base_dir / EARLIER_TRAINING).read_text())
    if earlier["finetune_minutes"] is None:
        return this
    return {
        "finetune_minutes": round(earlier["finetune_minutes"] + this["finetune_minutes"], 2),
        "finetune_steps": earlier["finetune_steps"] + this["finetune_steps"],
        "earlier_finetune_minutes": earlier["finetune_minutes"],
        "earlier_finetune_steps": earlier["finetune_steps"],
        "second_stage_finetune_minutes": this["finetune_minutes"],
        "second_stage_finetune_steps": this["finetune_steps"],
    }


def _earlier_training(bundle: Path) -> dict[str, float | None]:
    """How long the model inside a shipped bundle was pretrained and fine-tuned: from its
    provenance, or from the ``train`` entry whose command built it (bundles shipped before
    2026-12-06 did not record these figures)."""
    shipped = verify_bundle(bundle).get("shipped") or {}
    figures = dict(shipped.get("benchmark") or {})
    entry = json.loads(RESULTS.read_text())["benchmarks"].get("train", {})
    if "pretrain_minutes" not in figures and entry.get("command", "?") in shipped.get(
        "command", ""
    ):
        figures = {**entry["metrics"], **figures}
    return {name: figures.get(name) for name in TRAINING_FIGURES}


def _budget_reached(done: dict, wanted: PretrainSettings) -> bool:
    if wanted.max_steps:
        return (done.get("max_steps") or 0) >= wanted.max_steps
    return (done.get("max_minutes") or 0) >= (wanted.max_minutes or 0)


def stage_finetune(
    args: argparse.Namespace, settings: Settings, dataset_dir: Path, base_dir: Path
) -> Path:
    directory = args.work_dir / "sentiment-small"
    if args.reuse_finetuned and (directory / TRAINING_MANIFEST).exists():
        if not (directory / WIDE_CONFIG).exists():
            report = add_wide_head(directory, load_dataset(dataset_dir), settings)
            log.info("finetune: reusing %s; wide head %s", directory, report)
        return directory
    train = TrainSettings(
        base_model=str(base_dir),
        learning_rate=args.learning_rate,
        batch_size=64,
        epochs=3,
        max_minutes=args.finetune_minutes,
        eval_every_steps=1500,
        early_stopping_patience=4,
        shuffle_seed=args.shuffle_seed,
        average_decay=args.average_decay,
        bf16=args.bf16,
    )
    settings = settings.model_copy(update={"train": train})
    result = finetune(load_dataset(dataset_dir), directory, settings, progress=False)
    log.info(
        "finetune: %d steps (best %d, validation accuracy %.4f) in %.1f min",
        result.steps,
        result.best_step,
        result.best_validation_accuracy,
        result.minutes,
    )
    return directory


def stage_evaluate(
    args: argparse.Namespace, settings: Settings, dataset_dir: Path, base_dir: Path, model_dir: Path
) -> dict[str, float | int]:
    dataset = load_dataset(dataset_dir)
    started = time.monotonic()
    report = evaluation_report(model_dir, dataset, settings, with_baseline=True)
    log.info("evaluate: %.1f min", (time.monotonic() - started) / 60)
    (args.work_dir / "evaluation.json").write_text(json.dumps(report, ensure_ascii=False, indent=2))
    model, baseline = report["model"], report["baseline"]
    base_manifest = _base_progress(base_dir)
    train_manifest = json.loads((model_dir / TRAINING_MANIFEST).read_text())
    metrics = {
        **report_figures(model, baseline),
        "baseline_macro_f1": round(baseline["macro_f1"], 4),
        "baseline_rating_mae": round(baseline["rating_mae"], 3),
        "baseline_behaviour_pass_rate": round(baseline["behaviour"]["pass_rate"], 4),
        **_finetuning(base_dir, train_manifest),
        "pretrain_minutes": base_manifest["minutes"],
        "pretrain_steps": base_manifest["steps"],
        "model_mb": round(_size_mb(model_dir / "model.safetensors"), 1),
        "parameters_m": round(_parameters(model_dir) / 1e6, 2),
        "train_reviews": dataset.manifest.sizes["train"],
        "validation_accuracy": _validation_accuracy(train_manifest),
        **_wide_figures(train_manifest.get("wide_head")),
    }
    write_entry("train", metrics, threads=args.threads)
    write_markdown(metrics, report["model"]["behaviour"]["by_kind"])  # type: ignore[index]
    return metrics


def report_figures(model: dict, baseline: dict) -> dict[str, float | int]:
    """The evaluation report's headline figures, as every model benchmark records them."""
    return {
        "accuracy": round(model["accuracy"], 4),
        "macro_f1": round(model["macro_f1"], 4),
        "roc_auc": round(model["roc_auc"], 4),
        "ece": round(model["ece"], 4),
        "accuracy_natural_mix": round(model["accuracy_natural_mix"], 4),
        "baseline_accuracy": round(baseline["accuracy"], 4),
        "rating_mae": round(model["rating_mae"], 3),
        "rating_spearman": round(model["rating_spearman"], 4),
        "label_rating_contradictions": round(model["label_rating_contradictions"], 4),
        "behaviour_pass_rate": round(model["behaviour"]["pass_rate"], 4),
        "test_reviews": model["test_balanced_reviews"],
        "test_rated_reviews": model["test_rated_reviews"],
        "test_movies": model["test_movies"],
    }


def stage_ship(
    args: argparse.Namespace,
    settings: Settings,
    dataset_dir: Path,
    model_dir: Path,
    metrics: dict[str, float | int],
) -> None:
    """Export the model to INT8, stack the n-gram head on it (model/stacking.py), score the
    stacked bundle as the service serves it and record those figures as the ``train``
    entry; ship the bundle as the package's default model unless the model shipped now did
    better on validation (the test split only reports)."""
    dataset = load_dataset(dataset_dir)
    exported = build_serving_bundle(model_dir, args.work_dir / "serving", dataset["test"])
    stacked = stack_bundle(
        args.work_dir / "serving", dataset, args.work_dir / "stacked-serving", threads=args.threads
    )
    head = stacked.report
    served, report = served_figures(
        settings, dataset_dir, dataset["test"], stacked.directory, args.work_dir
    )
    metrics = {
        **metrics,
        **{f"pytorch_{name}": metrics[name] for name in PYTORCH_FIGURES},
        **served,
        "validation_accuracy": head["validation_sample_accuracy"],
        "validation_accuracy_unstacked": head["validation_sample_accuracy_base"],
        "stacked_head_mix": head["mix"],
        "stacked_head_minutes": head["minutes"],
        "int8_accuracy_delta": round(exported["accuracy_delta"], 4),
        "model_mb": round(_bundle_mb(stacked.manifest), 2),
        "pytorch_mb": metrics["model_mb"],
    }
    write_entry("train", metrics, threads=args.threads)
    write_markdown(metrics, report["model"]["behaviour"]["by_kind"])  # type: ignore[index]
    shipped_validation = _shipped_validation_accuracy()
    worse = shipped_validation is not None and metrics["validation_accuracy"] < shipped_validation
    if worse and not args.force_ship:
        log.warning(
            "ship: not shipped: validation accuracy %.4f is below the shipped model's %.4f "
            "(--force-ship ships it anyway)",
            metrics["validation_accuracy"],
            shipped_validation,
        )
        return
    command = "python benchmarks/train_benchmark.py " + " ".join(
        a for a in sys.argv[1:] if a != "--reuse-finetuned"
    )
    stage = "second_stage_" if "second_stage_finetune_minutes" in metrics else ""
    history = (
        f"BERT + wide head fine-tuned {metrics[stage + 'finetune_minutes']} min "
        f"({metrics[stage + 'finetune_steps']} steps), exported to INT8 and stacked with an "
        f"n-gram head (mix {head['mix']}, chosen on validation). Validation sample accuracy "
        f"{head['validation_sample_accuracy_base']} -> {head['validation_sample_accuracy']}."
    )
    if args.from_bundle and args.from_bundle.resolve() == DEFAULT_MODEL:
        before = json.loads((DEFAULT_MODEL / "manifest.json").read_text())["shipped"]
        command = f"{before['command']} && {command}"
        history = (
            f"Recovered from the default model shipped before it ({before.get('history', '')}); "
            f"then {history}"
        )
    ship(stacked.directory, dataset, metrics, command, history)


def ship(bundle: Path, dataset, metrics: dict, command: str, history: str) -> None:
    """Write ``bundle`` as the package's default model with its provenance."""
    provenance = {
        "data_fingerprint": dataset.manifest.fingerprint,
        "dataset_sizes": dataset.manifest.sizes,
        "benchmark": {k: metrics[k] for k in SHIPPED_FIGURES if k in metrics},
        "int8_accuracy": metrics["int8_accuracy"],
        "command": command,
        "history": history + " See benchmarks/RESULTS.md, model attempts.",
    }
    shipped = write_shipped_bundle(bundle, DEFAULT_MODEL, provenance)
    log.info("ship: %s (%s MB)", DEFAULT_MODEL, sum(shipped["sizes_mb"].values()))


def served_figures(
    settings: Settings, dataset_dir: Path, test: pd.DataFrame, bundle: Path, work_dir: Path
) -> tuple[dict[str, float | int], dict]:
    """A serving bundle's headline figures, scored as `cinesense evaluate --bundle` scores
    it (the test movies, beside the TF-IDF baseline), and its accuracy on the test sample
    the export checks INT8 on."""
    started = time.monotonic()
    report = evaluate_served(settings, dataset_dir, bundle=bundle, with_baseline=True)
    log.info("evaluate %s: %.1f min", bundle, (time.monotonic() - started) / 60)
    (work_dir / f"{bundle.name}_evaluation.json").write_text(
        json.dumps(report, ensure_ascii=False, indent=2, default=str)
    )
    figures = {
        **report_figures(report["model"], report["baseline"]),  # type: ignore[arg-type]
        "int8_accuracy": round(served_accuracy(bundle, test, settings.data.seed), 5),
    }
    return figures, report


def served_accuracy(bundle: Path, test: pd.DataFrame, seed: int) -> float:
    """Accuracy of the served file on the test sample the export checks INT8 on."""
    from cinesense.data.dataset import NEUTRAL, balanced_binary
    from cinesense.model.heads import positive_probability

    labelled = balanced_binary(test[test["label"] != NEUTRAL], seed)
    labelled = labelled.sample(n=min(MAX_EVALUATION_REVIEWS, len(labelled)), random_state=seed)
    predictor = OnnxPredictor.from_bundle(bundle)
    probability = positive_probability(
        predictor.logits(list(labelled["text"])).astype(np.float64), predictor.label_map
    )
    return float(((probability >= 0.5).astype(int) == labelled["label"].to_numpy()).mean())


def _bundle_mb(manifest: dict) -> float:
    served = [manifest["served_file"], *(n for n in manifest["files"] if not n.endswith(".onnx"))]
    return sum(manifest["files"][n]["bytes"] for n in served) / 2**20


def _validation_accuracy(train_manifest: dict) -> float:
    """Validation accuracy of what is served: BERT with its wide head when it has one."""
    wide = train_manifest.get("wide_head") or {}
    if wide.get("kept"):
        return float(wide["validation_accuracy_combined"])
    return round(float(train_manifest["best_validation_accuracy"]), 4)


def _shipped_validation_accuracy() -> float | None:
    manifest = DEFAULT_MODEL / "manifest.json"
    if not manifest.exists():
        return None
    figures = json.loads(manifest.read_text()).get("shipped", {}).get("benchmark", {})
    return figures.get("validation_accuracy")


def _base_progress(base_dir: Path) -> dict[str, float | None]:
    """Minutes and steps of a finished base, or of a pretraining checkpoint used as one, or
    of the pretraining of the model a base was recovered from."""
    if (base_dir / EARLIER_TRAINING).exists():
        earlier = json.loads((base_dir / EARLIER_TRAINING).read_text())
        return {"minutes": earlier["pretrain_minutes"], "steps": earlier["pretrain_steps"]}
    if (base_dir / MANIFEST).exists():
        return json.loads((base_dir / MANIFEST).read_text())
    checkpoint = json.loads((base_dir / "checkpoint.json").read_text())
    return {"minutes": round(checkpoint["elapsed_s"] / 60, 2), "steps": checkpoint["step"]}


def _wide_figures(wide: dict | None) -> dict[str, float]:
    """Validation accuracy of BERT alone, the wide head alone and the two mixed."""
    if not wide:
        return {}
    return {
        "wide_head_mix": wide["mix"],
        "validation_accuracy_bert": wide["validation_accuracy_bert"],
        "validation_accuracy_wide": wide["validation_accuracy_wide"],
        "validation_accuracy_combined": wide["validation_accuracy_combined"],
    }


def _size_mb(path: Path) -> float:
    return path.stat().st_size / 2**20


def _parameters(model_dir: Path) -> int:
    from safetensors import safe_open

    with safe_open(model_dir / "model.safetensors", "np") as weights:
        return sum(int(np.prod(weights.get_slice(k).get_shape())) for k in weights.keys())  # noqa: SIM118


def write_markdown(metrics: dict[str, float | int], behaviour: dict[str, float]) -> None:
    entry = json.loads(RESULTS.read_text())["benchmarks"]["train"]
    stacked = "pytorch_accuracy" in metrics
    lines = [
        "## train — self-built Korean BERT (small) on the Naver corpus",
        "",
        f"Machine: {entry['machine']}. Date: {entry['date']}. Command: `{entry['command']}`",
        "",
        f"Test: {metrics['test_reviews']} class-balanced labelled reviews and "
        f"{metrics['test_rated_reviews']} rated reviews from {metrics['test_movies']} movies "
        "that no training or pretraining step saw."
        + (
            " The model column is the shipped bundle (INT8, n-gram head stacked), scored as "
            "`cinesense evaluate --bundle` scores it; the PyTorch column is BERT with its wide "
            "head before export and stacking."
            if stacked
            else ""
        ),
        "",
        *_table(metrics, stacked),
        "",
        f"Model: {metrics['parameters_m']} M parameters, {metrics['model_mb']} MB"
        + (f" served ({metrics['pytorch_mb']} MB in PyTorch)" if stacked else "")
        + f". ROC-AUC {metrics['roc_auc']}, ECE {metrics['ece']}, rating Spearman "
        f"{metrics['rating_spearman']}, accuracy on the natural class mix "
        f"{metrics['accuracy_natural_mix']}, label/rating contradictions "
        f"{metrics['label_rating_contradictions']}.",
        _training_line(metrics),
        "Behaviour by kind: " + ", ".join(f"{k} {v:.2f}" for k, v in behaviour.items()) + ".",
        *_wide_line(metrics),
        *_stack_line(metrics),
        "",
    ]
    update_markdown("train", lines)


def _table(metrics: dict[str, float | int], stacked: bool) -> list[str]:
    rows = [
        ("binary accuracy (balanced)", "accuracy", 4),
        ("macro-F1", "macro_f1", 4),
        ("rating MAE (1–10, all ratings)", "rating_mae", 3),
        ("behavioural pass rate", "behaviour_pass_rate", 4),
    ]
    if not stacked:
        return [
            "| | model | TF-IDF + LR baseline |",
            "|---|---|---|",
            *(
                f"| {title} | {metrics[k]:.{d}f} | {metrics['baseline_' + k]:.{d}f} |"
                for title, k, d in rows
            ),
        ]
    return [
        "| | shipped bundle | PyTorch (BERT + wide head) | TF-IDF + LR baseline |",
        "|---|---|---|---|",
        *(
            f"| {title} | {metrics[k]:.{d}f} | {metrics['pytorch_' + k]:.{d}f} | "
            f"{metrics['baseline_' + k]:.{d}f} |"
            for title, k, d in rows
        ),
    ]


def _stack_line(metrics: dict[str, float | int]) -> list[str]:
    if "stacked_head_mix" not in metrics:
        return []
    return [
        f"Stacked n-gram head: mixed in at {metrics['stacked_head_mix']}, trained "
        f"{metrics['stacked_head_minutes']} min; validation sample accuracy "
        f"{metrics['validation_accuracy_unstacked']} -> {metrics['validation_accuracy']}. "
        f"Export: INT8 vs FP32 {metrics['int8_accuracy_delta'] * 100:+.2f} points; the served "
        f"bundle scores {metrics['int8_accuracy']} on the export's "
        f"{MAX_EVALUATION_REVIEWS} test reviews."
    ]


def _training_line(metrics: dict[str, float | int]) -> str:
    finetuning = (
        f"fine-tuning {metrics['finetune_minutes']} min ({metrics['finetune_steps']} steps)"
    )
    if "second_stage_finetune_minutes" in metrics:
        finetuning += (
            f": {metrics['earlier_finetune_minutes']} min "
            f"({metrics['earlier_finetune_steps']} steps) for the model shipped before, whose "
            "BERT was recovered from its INT8 bundle (cinesense.model.recover), then "
            f"{metrics['second_stage_finetune_minutes']} min "
            f"({metrics['second_stage_finetune_steps']} steps) more from that BERT"
        )
    return (
        f"Pretraining {metrics['pretrain_minutes']} min ({metrics['pretrain_steps']} steps); "
        f"{finetuning}."
    )


def _wide_line(metrics: dict[str, float | int]) -> list[str]:
    if "wide_head_mix" not in metrics:
        return []
    return [
        f"Wide n-gram head: mixed in at weight {metrics['wide_head_mix']}; validation accuracy "
        f"BERT alone {metrics['validation_accuracy_bert']}, wide head alone "
        f"{metrics['validation_accuracy_wide']}, together "
        f"{metrics['validation_accuracy_combined']}."
    ]


def main() -> None:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(name)s %(message)s", stream=sys.stderr
    )
    args = parse_args()
    set_threads(args.threads)
    settings = Settings()
    args.work_dir.mkdir(parents=True, exist_ok=True)
    dataset_dir = stage_dataset(args, settings)
    if args.stop_after == "dataset":
        return
    base_dir = args.base_dir or stage_base(args, dataset_dir)
    if args.stop_after == "pretrain":
        return
    model_dir = stage_finetune(args, settings, dataset_dir, base_dir)
    if args.stop_after == "finetune":
        return
    metrics = stage_evaluate(args, settings, dataset_dir, base_dir, model_dir)
    if args.stop_after == "evaluate":
        return
    stage_ship(args, settings, dataset_dir, model_dir, metrics)


if __name__ == "__main__":
    main()
