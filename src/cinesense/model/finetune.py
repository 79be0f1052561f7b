"""Fine-tune a (Korean) BERT on rated reviews: one 10-way rating head, two losses.

Loss = cross-entropy over the 10 ratings (every rated review, neutral ones included)
     + class-weighted cross-entropy of the binary sentiment read from the same logits
       (reviews labelled negative or positive; see :mod:`cinesense.model.heads`).

Seeded; evaluates on a class-balanced validation subset every ``eval_every_steps`` and
keeps the best weights (or, with ``average_decay``, the best exponential moving average
of the weights), stopping after ``early_stopping_patience`` evaluations without
improvement (or at ``max_steps`` / ``max_minutes``). The result is a standard Hugging
Face directory plus ``label_map.json``, ``rating_calibration.json`` and
``training_manifest.json``.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import random
import shutil
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import datasets
import numpy as np
import pandas as pd
import torch
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from tqdm.auto import tqdm
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from cinesense.config import Settings, TrainSettings
from cinesense.data.dataset import NEUTRAL, Dataset, balanced_binary, class_weights
from cinesense.errors import DataError
from cinesense.files import atomic_directory
from cinesense.model.balance import fit_decision
from cinesense.model.base import hub_token, resolve_base_model
from cinesense.model.checkpoint import FinetuneCheckpoint, FinetuneProgress, checkpoint_dir
from cinesense.model.heads import NUM_RATINGS, TRAINING_MANIFEST, LabelMap
from cinesense.model.loop import (
    Budget,
    adamw_with_schedule,
    length_bucketed_batches,
    optimizer_step,
    row_lengths,
    seed_everything,
    steps_for,
    training_precision,
)
from cinesense.model.predict import TorchPredictor
from cinesense.model.rating import RatingCalibration
from cinesense.model.wide import (
    WideAndDeep,
    WideConfig,
    WideTraining,
    binary_accuracy,
    fit_mix,
    train_wide_head,
    wide_logits,
)

log = logging.getLogger(__name__)
MAX_EVAL_REVIEWS = 8000
MAX_CALIBRATION_REVIEWS = 30000


@dataclass
class TrainResult:
    directory: Path
    steps: int
    best_step: int
    best_validation_accuracy: float
    minutes: float
    learning_rate: float
    history: list[dict[str, float]] = field(default_factory=list)
    wide_head: dict[str, object] | None = None


def default_learning_rate(hidden_size: int) -> float:
    """Narrow models need larger steps: 1e-3 for the tiny preset, 2e-4 for small, and the
    usual 5e-5 for BERT-base-sized models (hidden size 768 and up)."""
    if hidden_size < 128:
        return 1e-3
    return 2e-4 if hidden_size < 512 else 5e-5


def binary_logits(logits: torch.Tensor, label_map: LabelMap) -> torch.Tensor:
    negative = torch.logsumexp(logits[:, label_map.negative_slice], dim=-1)
    positive = torch.logsumexp(logits[:, label_map.positive_slice], dim=-1)
    return torch.stack([negative, positive], dim=-1)


def review_loss(
    logits: torch.Tensor,
    ratings: torch.Tensor,
    labels: torch.Tensor,
    weights: torch.Tensor,
    label_map: LabelMap,
) -> torch.Tensor:
    loss = logits.new_zeros(())
    if (ratings >= 0).any():
        loss = loss + torch.nn.functional.cross_entropy(logits, ratings, ignore_index=-100)
    if (labels >= 0).any():
        loss = loss + torch.nn.functional.cross_entropy(
            binary_logits(logits, label_map), labels, weight=weights, ignore_index=-100
        )
    return loss


@dataclass
class EncodedReviews:
    """Training rows as a memory-mapped Hugging Face ``Dataset`` of token ids and targets
    (-100 marks a target the loss ignores), tokenized once with batched ``map`` and cached
    on disk under a key of the data, the tokenizer and the length, so reruns skip it."""

    rows: datasets.Dataset
    class_weights: torch.Tensor

    @property
    def lengths(self) -> list[int]:
        return row_lengths(self.rows)

    def __len__(self) -> int:
        return len(self.rows)

    def batch(self, index: list[int]) -> tuple[list[list[int]], torch.Tensor, torch.Tensor]:
        part = self.rows[index]
        return part["input_ids"], torch.tensor(part["rating"]), torch.tensor(part["label"])

    @classmethod
    def encode(
        cls, rows: pd.DataFrame, tokenizer, max_length: int, cache_dir: Path | None = None
    ) -> EncodedReviews:
        targets = pd.DataFrame(
            {
                "text": rows["text"].astype(str),
                "rating": (rows["rating"].fillna(-99).astype(int) - 1).to_numpy(),
                "label": rows["label"].where(rows["label"] != NEUTRAL, -100).to_numpy(),
            }
        )
        key = _cache_key(targets, tokenizer, max_length)

        def tokenize(batch: dict[str, list]) -> dict[str, list]:
            ids = tokenizer(batch["text"], truncation=True, max_length=max_length)["input_ids"]
            return {"input_ids": ids, "length": [len(i) for i in ids]}

        table = datasets.Dataset.from_pandas(targets, preserve_index=False)
        cache_file = None
        if cache_dir is not None:
            cache_dir.mkdir(parents=True, exist_ok=True)
            cache_file = str(cache_dir / f"train-{key}.arrow")
        encoded = table.map(
            tokenize,
            batched=True,
            batch_size=4096,
            remove_columns=["text"],
            cache_file_name=cache_file,
            new_fingerprint=key,
            desc="tokenize",
        )
        weights = torch.tensor(class_weights(rows["label"]), dtype=torch.float32)
        return cls(encoded, weights)


def _cache_key(targets: pd.DataFrame, tokenizer, max_length: int) -> str:
    digest = hashlib.sha256()
    digest.update(pd.util.hash_pandas_object(targets, index=False).to_numpy().tobytes())
    digest.update(json.dumps(tokenizer.get_vocab(), sort_keys=True).encode())
    digest.update(str(max_length).encode())
    return digest.hexdigest()[:24]


class EarlyStopping:
    """Keeps the best weights by validation accuracy; stops after ``patience`` misses."""

    def __init__(self, patience: int) -> None:
        self.patience = patience
        self.best_accuracy = -1.0
        self.best_step = 0
        self.best_state: dict[str, torch.Tensor] | None = None
        self.misses = 0

    @property
    def should_stop(self) -> bool:
        return self.misses >= self.patience

    def update(self, model: torch.nn.Module, accuracy: float, step: int) -> None:
        if accuracy > self.best_accuracy:
            self.best_accuracy, self.best_step, self.misses = accuracy, step, 0
            self.best_state = copy.deepcopy(model.state_dict())
        else:
            self.misses += 1

    def restore(self, progress: FinetuneProgress) -> None:
        self.best_accuracy, self.best_step = progress.best_accuracy, progress.best_step
        self.misses, self.best_state = progress.misses, progress.best_state

    def progress(
        self, budget: Budget, average: AveragedModel | None, history: list[dict[str, float]]
    ) -> FinetuneProgress:
        return FinetuneProgress(
            step=budget.step,
            elapsed_s=budget.elapsed,
            best_accuracy=self.best_accuracy,
            best_step=self.best_step,
            misses=self.misses,
            best_state=self.best_state,
            average=None if average is None else average.state_dict(),
            history=history,
        )


def load_for_fine_tuning(base: str, label_map: LabelMap, token: str | None):
    tokenizer = AutoTokenizer.from_pretrained(base, token=token)
    model = AutoModelForSequenceClassification.from_pretrained(
        base,
        num_labels=NUM_RATINGS,
        id2label=label_map.id2label(),
        label2id={v: k for k, v in label_map.id2label().items()},
        token=token,
    )
    return model, tokenizer


def finetune(
    dataset: Dataset, out_dir: Path, settings: Settings, progress: bool = True
) -> TrainResult:
    """Fine-tune ``settings.train.base_model`` and save the model at ``out_dir``. A run
    cut off mid-way (the machine stopped) resumes from the checkpoint beside ``out_dir``
    when called again the same way (:mod:`cinesense.model.checkpoint`)."""
    options: TrainSettings = settings.train
    seed_everything(options.seed)
    base = resolve_base_model(options.base_model, settings)
    label_map = LabelMap(settings.data.negative_max_rating, settings.data.positive_min_rating)
    model, tokenizer = load_for_fine_tuning(base, label_map, hub_token(settings))
    checkpoints = FinetuneCheckpoint(
        checkpoint_dir(out_dir), dataset.manifest.fingerprint, base, _base_manifest(base), options
    )
    resumed = checkpoints.load() if options.checkpoint_every_minutes else None
    if resumed is not None:
        model, done = resumed.model, resumed.progress
        log.info("resuming fine-tuning at step %d (%.1f min)", done.step, done.elapsed_s / 60)
    train = _encoded_training_rows(dataset, tokenizer, settings)
    validation = _validation_sample(dataset, options)
    learning_rate = options.learning_rate or default_learning_rate(model.config.hidden_size)
    budget = Budget(
        steps_for(len(train), options.batch_size, options.epochs, options.max_steps),
        options.max_minutes,
        step=resumed.progress.step if resumed else 0,
        elapsed_s=resumed.progress.elapsed_s if resumed else 0.0,
    )
    optimizer, scheduler = adamw_with_schedule(
        model, learning_rate, options.weight_decay, budget, options.warmup_fraction
    )
    stopping = EarlyStopping(options.early_stopping_patience)
    average = _weight_average(model, options.average_decay)
    history: list[dict[str, float]] = []
    if resumed is not None:
        optimizer.load_state_dict(resumed.optimizer)
        torch.set_rng_state(resumed.torch_rng)
        stopping.restore(resumed.progress)
        if average is not None and resumed.progress.average is not None:
            average.load_state_dict(resumed.progress.average)
        history = resumed.progress.history
    shuffle_seed = options.seed if options.shuffle_seed is None else options.shuffle_seed
    rng = random.Random(shuffle_seed + budget.step)
    lengths = train.lengths
    next_checkpoint = budget.elapsed + (options.checkpoint_every_minutes or 0) * 60
    bar = tqdm(total=budget.total_steps, desc="fine-tune", unit="step", disable=not progress)
    bar.update(budget.step)
    while not (budget.done or stopping.should_stop):
        for batch_ids in length_bucketed_batches(lengths, options.batch_size, rng):
            model.train()
            input_ids, ratings, labels = train.batch(batch_ids)
            batch = tokenizer.pad({"input_ids": input_ids}, return_tensors="pt")
            with training_precision(options.bf16):
                logits = model(
                    input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]
                ).logits.float()
            loss = review_loss(logits, ratings, labels, train.class_weights, label_map)
            optimizer_step(model, loss, optimizer, scheduler, budget)
            if average is not None:
                average.update_parameters(model)
            bar.update(1)
            if budget.step % options.eval_every_steps == 0 or budget.done:
                kept = model if average is None else average.module
                accuracy = _validation_accuracy(kept, tokenizer, label_map, validation, options)
                stopping.update(kept, accuracy, budget.step)
                history.append(_checkpoint_record(budget, loss.item(), accuracy))
                bar.set_postfix(val_acc=f"{accuracy:.3f}")
            if budget.done or stopping.should_stop:
                break
            if options.checkpoint_every_minutes and budget.elapsed >= next_checkpoint:
                checkpoints.save(model, optimizer, stopping.progress(budget, average, history))
                next_checkpoint = budget.elapsed + options.checkpoint_every_minutes * 60
    bar.close()
    if stopping.best_state is not None:
        model.load_state_dict(stopping.best_state)
    wide: dict[str, object] | None = None
    if options.wide_head_epochs:
        model, wide = _attach_wide_head(model, tokenizer, train, validation, label_map, options)
    result = TrainResult(
        out_dir,
        budget.step,
        stopping.best_step,
        stopping.best_accuracy,
        budget.elapsed / 60,
        learning_rate,
        history,
        wide,
    )
    _save(model, tokenizer, label_map, out_dir, settings, dataset, base, result)
    checkpoints.remove()
    return result


def _weight_average(model: torch.nn.Module, decay: float | None) -> AveragedModel | None:
    """An exponential moving average of ``model``'s weights (BERT's buffers are constants)."""
    if decay is None:
        return None
    return AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(decay))


def _encoded_training_rows(dataset: Dataset, tokenizer, settings: Settings) -> EncodedReviews:
    options = settings.train
    rows = _training_rows(dataset["train"], options)
    cache = settings.home / "cache" / "tokenized"
    return EncodedReviews.encode(rows, tokenizer, options.max_length, cache)


def _validation_sample(dataset: Dataset, options: TrainSettings) -> pd.DataFrame:
    validation = balanced_binary(dataset["validation"], options.seed)
    return validation.sample(n=min(MAX_EVAL_REVIEWS, len(validation)), random_state=options.seed)


def add_wide_head(model_dir: Path, dataset: Dataset, settings: Settings) -> dict[str, object]:
    """Give a fine-tuned model without one its wide head (:mod:`cinesense.model.wide`),
    trained and mixed as :func:`finetune` does; the rating calibration is refitted and the
    training manifest records the head. Returns the head's report."""
    options = settings.train
    predictor = TorchPredictor.from_directory(model_dir)
    if isinstance(predictor.model, WideAndDeep):
        raise DataError(f"{model_dir} already has a wide head.")
    model, tokenizer, label_map = predictor.model, predictor.tokenizer, predictor.label_map
    train = _encoded_training_rows(dataset, tokenizer, settings)
    validation = _validation_sample(dataset, options)
    model, report = _attach_wide_head(model, tokenizer, train, validation, label_map, options)
    manifest_path = Path(model_dir) / TRAINING_MANIFEST
    manifest = json.loads(manifest_path.read_text())
    manifest["wide_head"] = report
    if report["kept"]:
        label_map, calibration = _fit_decision(model, tokenizer, label_map, dataset, settings)
        with atomic_directory(Path(model_dir)) as staging:
            for path in Path(model_dir).iterdir():
                shutil.copy(path, staging / path.name)
            model.save_pretrained(staging)
            label_map.save(staging)
            calibration.save(staging)
            (staging / TRAINING_MANIFEST).write_text(
                json.dumps(manifest, ensure_ascii=False, indent=2)
            )
    return report


def _attach_wide_head(
    model,
    tokenizer,
    train: EncodedReviews,
    validation: pd.DataFrame,
    label_map: LabelMap,
    options: TrainSettings,
):
    """Train the wide n-gram head (:mod:`cinesense.model.wide`) and wrap the model with it
    when a non-zero mix improves validation accuracy; otherwise keep BERT alone."""
    texts = list(validation["text"])
    ids = tokenizer(texts, truncation=True, max_length=options.max_length)["input_ids"]
    labels = validation["label"].to_numpy()

    def loss(logits, ratings, labels_):
        return review_loss(logits, ratings, labels_, train.class_weights, label_map)

    training = WideTraining(epochs=options.wide_head_epochs, seed=options.seed)
    head, history = train_wide_head(
        train, ids, labels, label_map, loss, training, WideConfig(), tokenizer.pad_token_id
    )
    predictor = TorchPredictor(model, tokenizer, label_map, None, options.max_length)
    deep = predictor.logits(texts, options.eval_batch_size).astype(np.float64)
    wide = wide_logits(head, ids, tokenizer.pad_token_id)
    mix, accuracy = fit_mix(deep, wide, labels, label_map)
    report = {
        "mix": mix,
        "kept": mix > 0,
        "validation_accuracy_bert": round(binary_accuracy(deep, labels, label_map), 4),
        "validation_accuracy_wide": round(binary_accuracy(wide, labels, label_map), 4),
        "validation_accuracy_combined": round(accuracy, 4),
        "epochs": history,
        **asdict(WideConfig()),
    }
    log.info("wide head: %s", report)
    return (WideAndDeep(model, head, mix) if mix > 0 else model), report


def _checkpoint_record(budget: Budget, loss: float, accuracy: float) -> dict[str, float]:
    log.info("fine-tune step %d loss %.3f validation accuracy %.4f", budget.step, loss, accuracy)
    return {
        "step": budget.step,
        "loss": round(loss, 4),
        "validation_accuracy": round(accuracy, 4),
        "minutes": round(budget.elapsed / 60, 2),
    }


def _training_rows(train: pd.DataFrame, settings: TrainSettings) -> pd.DataFrame:
    usable = train[train["rating"].notna() | (train["label"] != NEUTRAL)]
    if usable.empty:
        raise DataError("The training split holds no rated or labelled reviews.")
    if settings.max_train_samples and len(usable) > settings.max_train_samples:
        usable = usable.sample(n=settings.max_train_samples, random_state=settings.seed)
    return usable.reset_index(drop=True)


@torch.no_grad()
def _validation_accuracy(
    model, tokenizer, label_map: LabelMap, validation: pd.DataFrame, settings: TrainSettings
) -> float:
    predictor = TorchPredictor(model, tokenizer, label_map, None, settings.max_length)
    probability = predictor.positive_probability(list(validation["text"]), settings.eval_batch_size)
    return float(((probability >= 0.5).astype(int) == validation["label"].to_numpy()).mean())


def _save(
    model,
    tokenizer,
    label_map: LabelMap,
    out_dir: Path,
    settings: Settings,
    dataset: Dataset,
    base: str,
    result: TrainResult,
) -> None:
    manifest = {
        "kind": "cinesense-sentiment",
        "base_model": base,
        "base_manifest": _base_manifest(base),
        "dataset_fingerprint": dataset.manifest.fingerprint,
        "dataset_sizes": dataset.manifest.sizes,
        "settings": settings.train.model_dump(),
        "learning_rate": result.learning_rate,
        "data_settings": settings.data.model_dump(),
        "command": " ".join(sys.argv),
        "steps": result.steps,
        "best_step": result.best_step,
        "best_validation_accuracy": result.best_validation_accuracy,
        "minutes": round(result.minutes, 2),
        "history": result.history,
        "wide_head": result.wide_head,
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    label_map, calibration = _fit_decision(model, tokenizer, label_map, dataset, settings)
    manifest["positive_offset"] = label_map.positive_offset
    with atomic_directory(out_dir) as staging:
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        label_map.save(staging)
        calibration.save(staging)
        (staging / TRAINING_MANIFEST).write_text(json.dumps(manifest, ensure_ascii=False, indent=2))


def _fit_decision(
    model, tokenizer, label_map: LabelMap, dataset: Dataset, settings: Settings
) -> tuple[LabelMap, RatingCalibration]:
    """The label map's offset (model/balance.py), then the rating calibration read at it,
    both fitted on a sample of validation reviews."""
    validation = dataset["validation"]
    usable = validation[validation["rating"].notna() | (validation["label"] != NEUTRAL)]
    sample = usable.sample(
        n=min(MAX_CALIBRATION_REVIEWS, len(usable)), random_state=settings.train.seed
    )
    predictor = TorchPredictor(model, tokenizer, label_map, None, settings.train.max_length)
    logits = predictor.scores(list(sample["text"]), settings.train.eval_batch_size).logits
    return fit_decision(sample, logits, label_map)


def _base_manifest(base: str) -> dict[str, object] | None:
    path = Path(base) / "cinesense_manifest.json"
    if not path.exists():
        return None
    manifest = json.loads(path.read_text())
    return {k: manifest.get(k) for k in ("data_fingerprint", "settings", "steps", "created_at")}
