"""Build the platform's own Korean BERT: WordPiece vocabulary + masked-LM pretraining.

The output is a standard Hugging Face model directory (``config.json``, weights,
tokenizer files) plus ``cinesense_manifest.json`` recording the data fingerprint, the
settings and the command that made it, so training runs can name their exact base.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import datasets
import torch
from tqdm.auto import tqdm
from transformers import BertForMaskedLM, DataCollatorForLanguageModeling

from cinesense.config import PretrainSettings
from cinesense.errors import DataError
from cinesense.files import atomic_directory
from cinesense.model.checkpoint import PretrainCheckpoint, checkpoint_dir
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
from cinesense.model.presets import PRESETS
from cinesense.model.tokenizer import train_wordpiece

log = logging.getLogger(__name__)
MANIFEST = "cinesense_manifest.json"


@dataclass
class PretrainResult:
    directory: Path
    steps: int
    final_loss: float
    minutes: float


def text_fingerprint(texts: Sequence[str]) -> str:
    digest = hashlib.sha256()
    for text in sorted(texts):
        digest.update(text.encode())
        digest.update(b"\x1e")
    return digest.hexdigest()


def pretrain(
    texts: Sequence[str],
    out_dir: Path,
    settings: PretrainSettings,
    data_source: dict[str, object] | None = None,
    progress: bool = True,
) -> PretrainResult:
    """Train a tokenizer and a masked-LM BERT on ``texts`` (already normalized).

    A checkpoint beside ``out_dir`` is saved every ``checkpoint_every_minutes``; a later
    call with the same texts and model settings resumes from it, so pretraining can run
    longer than one sitting (raise ``max_minutes`` to extend a finished run).
    """
    texts = [t for t in texts if t.strip()]
    if len(texts) < 100:
        raise DataError(
            f"Pretraining needs at least 100 non-empty reviews; got {len(texts)}. Point it at "
            "a larger corpus (the bundled sample has about 6,000)."
        )
    seed_everything(settings.seed)
    checkpoints = PretrainCheckpoint(checkpoint_dir(out_dir), text_fingerprint(texts), settings)
    state = checkpoints.load()
    if state is None:
        preset = PRESETS[settings.preset]
        vocab_size = settings.vocab_size or preset.vocab_size
        log.info("training a %d-token WordPiece vocabulary on %d reviews", vocab_size, len(texts))
        tokenizer = train_wordpiece(texts, vocab_size, settings.max_length)
        model = BertForMaskedLM(preset.bert_config(len(tokenizer), settings.max_length))
    else:
        tokenizer, model = state.tokenizer, state.model
        log.info("resuming pretraining at step %d (%.1f min)", state.step, state.elapsed_s / 60)
    examples = encode_texts(tokenizer, texts, settings)
    lengths = examples.lengths
    collator = mlm_collator(tokenizer, settings.mlm_probability, settings.whole_word_mask)
    budget = Budget(
        steps_for(len(texts), settings.batch_size, settings.epochs, settings.max_steps),
        settings.max_minutes,
        step=state.step if state else 0,
        elapsed_s=state.elapsed_s if state else 0.0,
    )
    optimizer, scheduler = adamw_with_schedule(
        model, settings.learning_rate, 0.01, budget, settings.warmup_fraction
    )
    if state is not None:
        optimizer.load_state_dict(state.optimizer)
        torch.set_rng_state(state.torch_rng)
    rng = random.Random(settings.seed + budget.step)
    model.train()
    running = state.loss if state else 0.0
    next_checkpoint = budget.elapsed + settings.checkpoint_every_minutes * 60
    bar = tqdm(total=budget.total_steps, desc="pretrain", unit="step", disable=not progress)
    bar.update(budget.step)
    while not budget.done:
        for batch_ids in length_bucketed_batches(lengths, settings.batch_size, rng):
            batch = collator(examples.batch(batch_ids))
            with training_precision(settings.bf16):
                loss = masked_lm_loss(model, batch)
            optimizer_step(model, loss, optimizer, scheduler, budget)
            running = 0.98 * running + 0.02 * loss.item() if budget.step > 1 else loss.item()
            bar.update(1)
            bar.set_postfix(loss=f"{running:.3f}")
            if budget.step % 500 == 0:
                log.info(
                    "pretrain step %d loss %.3f (%.1f min)",
                    budget.step,
                    running,
                    budget.elapsed / 60,
                )
            if budget.elapsed >= next_checkpoint:
                checkpoints.save(model, tokenizer, optimizer, budget, running)
                next_checkpoint = budget.elapsed + settings.checkpoint_every_minutes * 60
            if budget.done:
                break
    bar.close()
    checkpoints.save(model, tokenizer, optimizer, budget, running)

    result = PretrainResult(out_dir, budget.step, running, budget.elapsed / 60)
    _save(model, tokenizer, out_dir, settings, texts, data_source, result)
    return result


def mlm_collator(
    tokenizer, mlm_probability: float, whole_word_mask: bool
) -> DataCollatorForLanguageModeling:
    """BERT's masking; whole words are always replaced by [MASK] (transformers supports no
    random replacement for them)."""
    return DataCollatorForLanguageModeling(
        tokenizer,
        mlm_probability=mlm_probability,
        whole_word_mask=whole_word_mask,
        mask_replace_prob=1.0 if whole_word_mask else 0.8,
        random_replace_prob=0.0 if whole_word_mask else 0.1,
        return_tensors="pt",
    )


def _padded_offsets(batch: list[dict]) -> list[dict]:
    """The collator pads token ids itself but needs offsets already of one length."""
    if "offset_mapping" not in batch[0]:
        return batch
    longest = max(len(example["input_ids"]) for example in batch)
    return [
        {
            "input_ids": example["input_ids"],
            "offset_mapping": [
                *example["offset_mapping"],
                *[(0, 0)] * (longest - len(example["input_ids"])),
            ],
        }
        for example in batch
    ]


@dataclass
class EncodedTexts:
    """Token ids (and character offsets when whole-word masking needs word boundaries) in
    an Arrow-backed ``datasets.Dataset``: a few bytes per token, where Python lists of the
    whole corpus held gigabytes."""

    rows: datasets.Dataset

    @property
    def lengths(self) -> list[int]:
        return row_lengths(self.rows)

    def __len__(self) -> int:
        return len(self.rows)

    def batch(self, index: list[int]) -> list[dict]:
        """The collator's input: one dict per review, offsets padded to one length."""
        part = self.rows[index]
        columns = [name for name in part if name != "length"]
        examples = [{name: part[name][i] for name in columns} for i in range(len(index))]
        return _padded_offsets(examples)


def encode_texts(tokenizer, texts: Sequence[str], settings: PretrainSettings) -> EncodedTexts:
    def tokenize(batch: dict[str, list]) -> dict[str, list]:
        encoded = tokenizer(
            batch["text"],
            truncation=True,
            max_length=settings.max_length,
            return_offsets_mapping=settings.whole_word_mask,
        )
        columns = {"input_ids": encoded["input_ids"]}
        if settings.whole_word_mask:
            columns["offset_mapping"] = encoded["offset_mapping"]
        return {**columns, "length": [len(ids) for ids in encoded["input_ids"]]}

    table = datasets.Dataset.from_dict({"text": list(texts)})
    rows = table.map(
        tokenize, batched=True, batch_size=4096, remove_columns=["text"], desc="tokenize"
    )
    return EncodedTexts(rows)


def masked_lm_loss(model: BertForMaskedLM, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """MLM loss with the vocabulary projection applied to masked positions only.

    Reviews are short, so projecting every position onto the vocabulary would cost more
    than the encoder itself; the loss is identical to ``model(**batch).loss``.
    """
    hidden = model.bert(
        input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]
    ).last_hidden_state
    labels = batch["labels"]
    masked = labels != -100
    logits = model.cls(hidden[masked]).float()
    return torch.nn.functional.cross_entropy(logits, labels[masked])


def _save(
    model,
    tokenizer,
    out_dir: Path,
    settings: PretrainSettings,
    texts: Sequence[str],
    data_source: dict[str, object] | None,
    result: PretrainResult,
) -> None:
    manifest = {
        "kind": "cinesense-self-built-base",
        "data_fingerprint": text_fingerprint(texts),
        "data": {"reviews": len(texts), **(data_source or {})},
        "settings": settings.model_dump(),
        "command": " ".join(sys.argv),
        "steps": result.steps,
        "final_mlm_loss": round(result.final_loss, 4),
        "minutes": round(result.minutes, 2),
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    with atomic_directory(out_dir) as staging:
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        (staging / MANIFEST).write_text(json.dumps(manifest, ensure_ascii=False, indent=2))
