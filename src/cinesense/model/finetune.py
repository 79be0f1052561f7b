"""Fine-tune a (Korean) BERT on rated reviews: one 10-way rating head, two losses.

Loss = cross-entropy over the 10 ratings (every rated review, neutral ones included)
     + class-weighted cross-entropy of the binary sentiment read from the same logits
       (reviews labelled negative or positive; see :mod:`cinesense.model.heads`).

Seeded; evaluates on a class-balanced validation subset every ``eval_every_steps`` and
keeps the best weights, stopping after ``early_stopping_patience`` evaluations without
improvement (or at ``max_steps`` / ``max_minutes``). The result is a standard Hugging
Face directory plus ``label_map.json``, ``rating_calibration.json`` and
``training_manifest.json``.
"""

from __future__ import annotations

import copy
import json
import logging
import random
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import torch
from tqdm.auto import tqdm
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from cinesense.config import Settings, TrainSettings
from cinesense.data.dataset import NEUTRAL, Dataset, balanced_binary, class_weights
from cinesense.errors import DataError
from cinesense.model.base import hub_token, resolve_base_model
from cinesense.model.batching import (
    Budget,
    length_bucketed_batches,
    seed_everything,
    steps_for,
    warmup_linear_decay,
)
from cinesense.model.heads import NUM_RATINGS, LabelMap
from cinesense.model.predict import TorchPredictor
from cinesense.model.rating import RatingCalibration

log = logging.getLogger(__name__)
TRAINING_MANIFEST = "training_manifest.json"
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


def finetune(
    dataset: Dataset, out_dir: Path, settings: Settings, progress: bool = True
) -> TrainResult:
    train_settings: TrainSettings = settings.train
    seed_everything(train_settings.seed)
    base = resolve_base_model(train_settings.base_model, settings)
    label_map = LabelMap(settings.data.negative_max_rating, settings.data.positive_min_rating)
    token = hub_token(settings)
    tokenizer = AutoTokenizer.from_pretrained(base, token=token)
    model = AutoModelForSequenceClassification.from_pretrained(
        base,
        num_labels=NUM_RATINGS,
        id2label=label_map.id2label(),
        label2id={v: k for k, v in label_map.id2label().items()},
        token=token,
    )

    train = _training_rows(dataset["train"], train_settings)
    encoded = tokenizer(list(train["text"]), truncation=True, max_length=train_settings.max_length)[
        "input_ids"
    ]
    lengths = [len(ids) for ids in encoded]
    ratings = torch.tensor(train["rating"].fillna(0).astype(int).to_numpy() - 1)
    ratings[torch.tensor(train["rating"].isna().to_numpy())] = -100
    labels = torch.tensor(train["label"].to_numpy())
    labels[labels == NEUTRAL] = -100
    weights = torch.tensor(class_weights(train["label"]), dtype=torch.float32)
    validation = balanced_binary(dataset["validation"], train_settings.seed)
    validation = validation.sample(
        n=min(MAX_EVAL_REVIEWS, len(validation)), random_state=train_settings.seed
    )

    learning_rate = train_settings.learning_rate or default_learning_rate(model.config.hidden_size)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=learning_rate, weight_decay=train_settings.weight_decay
    )
    budget = Budget(
        steps_for(
            len(train), train_settings.batch_size, train_settings.epochs, train_settings.max_steps
        ),
        train_settings.max_minutes,
    )
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda _: warmup_linear_decay(budget, train_settings.warmup_fraction)
    )
    rng = random.Random(train_settings.seed)
    history: list[dict[str, float]] = []
    best_accuracy, best_step, best_state, stale = -1.0, 0, None, 0
    bar = tqdm(total=budget.total_steps, desc="fine-tune", unit="step", disable=not progress)
    model.train()
    while not budget.done and stale < train_settings.early_stopping_patience:
        for batch_ids in length_bucketed_batches(lengths, train_settings.batch_size, rng):
            batch = tokenizer.pad(
                {"input_ids": [encoded[i] for i in batch_ids]}, return_tensors="pt"
            )
            logits = model(
                input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]
            ).logits
            loss = review_loss(logits, ratings[batch_ids], labels[batch_ids], weights, label_map)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            budget.step += 1
            bar.update(1)
            last = budget.step % train_settings.eval_every_steps == 0 or budget.done
            if last:
                accuracy = _validation_accuracy(
                    model, tokenizer, label_map, validation, train_settings
                )
                history.append(
                    {
                        "step": budget.step,
                        "loss": round(loss.item(), 4),
                        "validation_accuracy": round(accuracy, 4),
                        "minutes": round(budget.elapsed / 60, 2),
                    }
                )
                log.info(
                    "fine-tune step %d loss %.3f validation accuracy %.4f",
                    budget.step,
                    loss.item(),
                    accuracy,
                )
                bar.set_postfix(val_acc=f"{accuracy:.3f}")
                if accuracy > best_accuracy:
                    best_accuracy, best_step, stale = accuracy, budget.step, 0
                    best_state = copy.deepcopy(model.state_dict())
                else:
                    stale += 1
                model.train()
            if budget.done or stale >= train_settings.early_stopping_patience:
                break
    bar.close()
    if best_state is not None:
        model.load_state_dict(best_state)
    result = TrainResult(
        out_dir, budget.step, best_step, best_accuracy, budget.elapsed / 60, learning_rate, history
    )
    _save(model, tokenizer, label_map, out_dir, settings, dataset, base, result)
    return result


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
    staging = out_dir.with_name(f".{out_dir.name}.tmp")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    model.save_pretrained(staging)
    tokenizer.save_pretrained(staging)
    label_map.save(staging)
    calibration = _fit_rating_calibration(model, tokenizer, label_map, dataset, settings)
    calibration.save(staging)
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
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    (staging / TRAINING_MANIFEST).write_text(json.dumps(manifest, ensure_ascii=False, indent=2))
    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging.rename(out_dir)


def _fit_rating_calibration(
    model, tokenizer, label_map: LabelMap, dataset: Dataset, settings: Settings
) -> RatingCalibration:
    rated = dataset["validation"][dataset["validation"]["rating"].notna()]
    rated = rated.sample(
        n=min(MAX_CALIBRATION_REVIEWS, len(rated)), random_state=settings.train.seed
    )
    predictor = TorchPredictor(model, tokenizer, label_map, None, settings.train.max_length)
    scores = predictor.scores(list(rated["text"]), settings.train.eval_batch_size)
    return RatingCalibration.fit(scores.expected_rating, rated["rating"].to_numpy(float))


def _base_manifest(base: str) -> dict[str, object] | None:
    path = Path(base) / "cinesense_manifest.json"
    if not path.exists():
        return None
    manifest = json.loads(path.read_text())
    return {k: manifest.get(k) for k in ("data_fingerprint", "settings", "steps", "created_at")}
