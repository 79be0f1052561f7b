"""A wide n-gram head beside BERT: one model, one ONNX graph ("wide & deep").

BERT fine-tuned on a CPU budget sees only part of the training reviews once; a linear
model over hashed token n-grams sees all of them in a minute or two, and its mistakes
differ from BERT's. The wide head reads the same token ids as BERT: the unigrams, bigrams
and trigrams of WordPiece ids are hashed into ``buckets`` rows of a table holding one
weight per rating, and their sum (scaled by the square root of their count) gives a
second set of 10 rating logits. The served rating distribution is the mixture
``(1 - mix) * BERT's + mix * the wide head's``; ``mix`` is fitted on validation reviews
(0 means the head does not help and is not kept). Measured on the full corpus, adding
the two sets of logits did not help while the mixture did (+0.9 points on validation).
Hashing runs inside the model (integer arithmetic on ``input_ids``), so the ONNX export
and the serving code need no change and a bundle stays one graph; its ``logits`` output
is then the mixture's log-probabilities, read exactly like logits.
"""

from __future__ import annotations

import json
import logging
import random
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from transformers import AutoModelForSequenceClassification
from transformers.modeling_outputs import SequenceClassifierOutput

from cinesense.model.balance import can_balance, fit_positive_offset
from cinesense.model.heads import NUM_RATINGS, LabelMap, positive_probability

log = logging.getLogger(__name__)
WIDE_CONFIG = "wide_head.json"
WIDE_WEIGHTS = "wide_head.safetensors"
PRIME = 1_000_003  # ids stay below 2**20, so a trigram's hash fits in int64
MIX_GRID = tuple(round(0.05 * i, 2) for i in range(0, 20))  # 0 … 0.95


@dataclass(frozen=True)
class WideConfig:
    buckets: int = 2**18
    orders: tuple[int, ...] = (1, 2, 3)


class WideHead(torch.nn.Module):
    """Mean of hashed n-gram weights: token ids (batch, length) → rating logits (batch, 10)."""

    def __init__(self, config: WideConfig) -> None:
        super().__init__()
        self.config = config
        self.table = torch.nn.Embedding(config.buckets, NUM_RATINGS)
        torch.nn.init.zeros_(self.table.weight)
        self.bias = torch.nn.Parameter(torch.zeros(NUM_RATINGS))

    def hashed(self, input_ids: torch.Tensor, attention_mask: torch.Tensor):
        """Bucket of every n-gram and whether it lies wholly inside the text."""
        length = input_ids.shape[1]
        buckets, valid = [], []
        for order in self.config.orders:
            end = length - order + 1
            code, inside = input_ids[:, 0:end], attention_mask[:, 0:end]
            for k in range(1, order):
                code = code * PRIME + input_ids[:, k : end + k]
                inside = inside * attention_mask[:, k : end + k]
            buckets.append((code + order * 7919) % self.config.buckets)
            valid.append(inside)
        return torch.cat(buckets, dim=1), torch.cat(valid, dim=1).to(torch.float32)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        buckets, valid = self.hashed(input_ids, attention_mask)
        weights = self.table(buckets) * valid.unsqueeze(-1)
        count = valid.sum(dim=1, keepdim=True).clamp(min=1.0)
        return weights.sum(dim=1) / count.sqrt() + self.bias


def mixture_logits(deep: torch.Tensor, wide: torch.Tensor, mix: float) -> torch.Tensor:
    """Log-probabilities of the mixture of the two rating distributions."""
    mixed = (1.0 - mix) * torch.softmax(deep, dim=-1) + mix * torch.softmax(wide, dim=-1)
    return torch.log(mixed.clamp(min=1e-12))


class WideAndDeep(torch.nn.Module):
    """A sequence classifier whose rating distribution mixes BERT's and the wide head's."""

    def __init__(self, bert, wide: WideHead, mix: float) -> None:
        super().__init__()
        self.bert = bert
        self.wide = wide
        self.mix = float(mix)

    @property
    def config(self):
        return self.bert.config

    @property
    def name_or_path(self) -> str:
        return self.bert.name_or_path

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor):
        deep = self.bert(input_ids=input_ids, attention_mask=attention_mask).logits
        wide = self.wide(input_ids, attention_mask)
        return SequenceClassifierOutput(logits=mixture_logits(deep, wide, self.mix))

    def save_pretrained(self, directory: Path) -> None:
        self.bert.save_pretrained(directory)
        weights = {"table": self.wide.table.weight.detach(), "bias": self.wide.bias.detach()}
        save_file(weights, str(Path(directory) / WIDE_WEIGHTS))
        config = {**asdict(self.wide.config), "mix": self.mix}
        (Path(directory) / WIDE_CONFIG).write_text(json.dumps(config, indent=2))


def load_classifier(directory: str | Path, **options):
    """The saved classifier: the Hugging Face model, wrapped with its wide head if it has one.

    ``options`` go to ``from_pretrained`` (for example ``attn_implementation``)."""
    directory = Path(directory)
    bert = AutoModelForSequenceClassification.from_pretrained(directory, **options)
    if not (directory / WIDE_CONFIG).exists():
        return bert
    data = json.loads((directory / WIDE_CONFIG).read_text())
    head = WideHead(WideConfig(data["buckets"], tuple(data["orders"])))
    weights = load_file(str(directory / WIDE_WEIGHTS))
    head.table.weight.data.copy_(weights["table"])
    head.bias.data.copy_(weights["bias"])
    return WideAndDeep(bert, head.eval(), data["mix"]).eval()


@dataclass(frozen=True)
class WideTraining:
    epochs: int = 1
    batch_size: int = 256
    learning_rate: float = 0.02
    seed: int = 13


def train_wide_head(
    train,
    validation_ids: list[list[int]],
    validation_labels: np.ndarray,
    label_map: LabelMap,
    loss_fn,
    options: WideTraining,
    config: WideConfig,
    pad_id: int,
) -> tuple[WideHead, list[dict[str, float]]]:
    """Train the head alone on every training review (``EncodedReviews``) and keep the
    epoch with the best validation accuracy. ``loss_fn(logits, ratings, labels)`` is the
    fine-tuning loss, so both parts learn the same targets."""
    head = WideHead(config)
    optimizer = torch.optim.Adam(head.parameters(), lr=options.learning_rate)
    rng = random.Random(options.seed)
    order = list(range(len(train)))
    total = options.epochs * -(-len(order) // options.batch_size)
    # Linear decay to zero: a hashed linear model overfits rare n-grams at a constant rate.
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1 - step / total)
    best_state, best_accuracy, history = None, -1.0, []
    started = time.monotonic()
    for epoch in range(1, options.epochs + 1):
        rng.shuffle(order)
        head.train()
        for start in range(0, len(order), options.batch_size):
            ids, ratings, labels = train.batch(order[start : start + options.batch_size])
            input_ids, mask = pad(ids, pad_id)
            loss = loss_fn(head(input_ids, mask), ratings, labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
        logits = wide_logits(head, validation_ids, pad_id)
        accuracy = binary_accuracy(logits, validation_labels, label_map)
        minutes = round((time.monotonic() - started) / 60, 2)
        history.append(
            {"epoch": epoch, "validation_accuracy": round(accuracy, 4), "minutes": minutes}
        )
        log.info("wide head epoch %d: validation accuracy %.4f", epoch, accuracy)
        if accuracy > best_accuracy:
            best_accuracy = accuracy
            best_state = {k: v.clone() for k, v in head.state_dict().items()}
    if best_state is not None:
        head.load_state_dict(best_state)
    return head.eval(), history


def pad(ids: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(row) for row in ids)
    input_ids = torch.full((len(ids), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(ids), width), dtype=torch.long)
    for i, row in enumerate(ids):
        input_ids[i, : len(row)] = torch.tensor(row, dtype=torch.long)
        mask[i, : len(row)] = 1
    return input_ids, mask


@torch.no_grad()
def wide_logits(head: WideHead, ids: list[list[int]], pad_id: int, batch: int = 1024) -> np.ndarray:
    head.eval()
    parts = [head(*pad(ids[i : i + batch], pad_id)).numpy() for i in range(0, len(ids), batch)]
    return np.concatenate(parts).astype(np.float64)


def binary_accuracy(logits: np.ndarray, labels: np.ndarray, label_map: LabelMap) -> float:
    """Accuracy of the binary sentiment read from rating logits."""
    probability = positive_probability(logits, label_map)
    return float(((probability >= 0.5).astype(int) == labels).mean())


def fit_mix(
    deep: np.ndarray, wide: np.ndarray, labels: np.ndarray, label_map: LabelMap
) -> tuple[float, float]:
    """The weight of the wide head in the mixture that serves validation reviews best, and
    its accuracy. Each mixture is read at its own balanced offset (model/balance.py), as
    it will be served, when the reviews allow one. Accuracy decides; among equals the
    smaller weight wins (0: BERT alone)."""
    deep_t, wide_t = torch.from_numpy(deep), torch.from_numpy(wide)
    balance = can_balance(labels)
    scored = []
    for mix in MIX_GRID:
        mixed = mixture_logits(deep_t, wide_t, mix).numpy()
        read_at = label_map
        if balance:
            read_at = replace(
                label_map, positive_offset=fit_positive_offset(mixed, labels, label_map)
            )
        scored.append((binary_accuracy(mixed, labels, read_at), -mix))
    accuracy, negative_mix = max(scored)
    return -negative_mix, accuracy
