"""Precision benchmark: training speed and loss in float32 and in bfloat16 autocast.

    python benchmarks/precision_benchmark.py

The ``small`` preset on real training reviews (length-bucketed batches, as the training
loops build them): masked-LM pretraining steps at batch 128 and rating-classifier steps at
batch 64, each precision from the same initial weights over the same batches. Reports
steps per second and the loss after the same steps (did bfloat16 learn as float32 does).
Needs the dataset train_benchmark.py builds in --work-dir. Writes the ``precision`` entry
of benchmarks/results.json and a section of benchmarks/RESULTS.md. On a CPU without native
bfloat16 (AVX512-BF16 or AMX) both columns are float32: the script says so.
"""

from __future__ import annotations

import argparse
import copy
import logging
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
from results import machine, update_markdown, write_entry
from transformers import BertForMaskedLM, BertForSequenceClassification

from cinesense.data.dataset import load_dataset
from cinesense.model.loop import (
    length_bucketed_batches,
    native_bf16,
    set_threads,
    training_precision,
)
from cinesense.model.presets import PRESETS
from cinesense.model.pretrain import masked_lm_loss, mlm_collator
from cinesense.model.tokenizer import train_wordpiece

log = logging.getLogger("precision_benchmark")
MAX_LENGTH = 128


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work-dir", type=Path, default=Path.home() / ".cache/cinesense-bench")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=150, help="Steps per run.")
    parser.add_argument("--reviews", type=int, default=60000)
    return parser.parse_args()


def run(
    make_model: Callable[[], torch.nn.Module],
    loss_of: Callable[[torch.nn.Module, list[int]], torch.Tensor],
    batches: list[list[int]],
    bf16: bool,
) -> dict[str, float]:
    """Seconds per step (after five warm-up steps) and the mean loss of the last 20."""
    torch.manual_seed(0)
    model = make_model().train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=5e-4)
    losses, started = [], 0.0
    for step, batch in enumerate(batches):
        if step == 5:
            started = time.perf_counter()
        with training_precision(bf16):
            loss = loss_of(model, batch)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(loss.item())
    seconds = (time.perf_counter() - started) / (len(batches) - 5)
    return {"steps_per_s": round(1 / seconds, 3), "loss": round(sum(losses[-20:]) / 20, 4)}


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    args = parse_args()
    set_threads(args.threads)
    train = load_dataset(args.work_dir / "dataset")["train"]
    reviews = train.sample(n=min(args.reviews, len(train)), random_state=13)
    texts = list(reviews["text"])
    tokenizer = train_wordpiece(texts, PRESETS["small"].vocab_size, MAX_LENGTH)
    encoded = tokenizer(texts, truncation=True, max_length=MAX_LENGTH)["input_ids"]
    ratings = torch.tensor(reviews["rating"].to_numpy(), dtype=torch.long) - 1
    config = PRESETS["small"].bert_config(len(tokenizer), MAX_LENGTH)
    collator = mlm_collator(tokenizer, 0.15, whole_word_mask=False)

    def pretrain_loss(model, batch: list[int]) -> torch.Tensor:
        torch.manual_seed(len(batch) + batch[0])  # the same masking in both precisions
        return masked_lm_loss(model, collator([{"input_ids": encoded[i]} for i in batch]))

    def classifier_loss(model, batch: list[int]) -> torch.Tensor:
        padded = tokenizer.pad({"input_ids": [encoded[i] for i in batch]}, return_tensors="pt")
        logits = model(**padded).logits.float()
        return torch.nn.functional.cross_entropy(logits, ratings[batch])

    lengths = [len(ids) for ids in encoded]
    native = native_bf16()
    metrics: dict[str, float | int | str] = {"native_bf16": int(native), "steps": args.steps}
    for name, make, loss_of, batch_size in (
        ("pretrain", lambda: BertForMaskedLM(config), pretrain_loss, 128),
        ("classifier", lambda: _classifier(config), classifier_loss, 64),
    ):
        batches = list(length_bucketed_batches(lengths, batch_size, random.Random(7)))
        batches = batches[: args.steps]
        for precision, bf16 in (("fp32", False), ("bf16", True)):
            figures = run(make, loss_of, batches, bf16)
            log.info("%s %s: %s", name, precision, figures)
            for key, value in figures.items():
                metrics[f"{name}_{precision}_{key}"] = value
        metrics[f"{name}_speedup"] = round(
            float(metrics[f"{name}_bf16_steps_per_s"]) / float(metrics[f"{name}_fp32_steps_per_s"]),
            2,
        )
    write_entry("precision", metrics, threads=args.threads)
    update_markdown("precision", markdown(args, metrics, native))


def _classifier(config) -> BertForSequenceClassification:
    config = copy.deepcopy(config)
    config.num_labels = 10  # one logit per rating, as fine-tuning builds it
    return BertForSequenceClassification(config)


def markdown(args: argparse.Namespace, metrics: dict, native: bool) -> list[str]:
    rows = [
        f"| {name} (batch {batch}) | {metrics[f'{name}_fp32_steps_per_s']} | "
        f"{metrics[f'{name}_bf16_steps_per_s']} | {metrics[f'{name}_speedup']}x | "
        f"{metrics[f'{name}_fp32_loss']} | {metrics[f'{name}_bf16_loss']} |"
        for name, batch in (("pretrain", 128), ("classifier", 64))
    ]
    return [
        "## precision — training in float32 and in bfloat16 autocast (model/loop.py)",
        "",
        f"Machine: {machine(args.threads)}. Date: {time.strftime('%Y-%m-%d')}. Command: "
        f"`{' '.join(['python benchmarks/precision_benchmark.py', *sys.argv[1:]])}`.",
        "",
        f"The `small` preset from the same initial weights over the same {args.steps} "
        f"length-bucketed batches of {args.reviews:,} training reviews (a WordPiece "
        "vocabulary trained on them); the loss is the mean of the last 20 steps. "
        + (
            "This CPU computes bfloat16 natively."
            if native
            else "**This CPU has no native bfloat16: both columns ran in float32.**"
        ),
        "",
        "| training step | fp32 steps/s | bf16 steps/s | speed-up | fp32 loss | bf16 loss |",
        "|---|---:|---:|---:|---:|---:|",
        *rows,
        "",
        "Weights, gradients and the optimizer stay float32; only the forward pass is "
        "autocast (`--bf16` in train_benchmark.py, `bf16` in the pretraining and training "
        "settings).",
    ]


if __name__ == "__main__":
    main()
