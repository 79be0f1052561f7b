"""Training-loop helpers shared by pretraining and fine-tuning."""

from __future__ import annotations

import contextlib
import logging
import math
import os
import random
import time
from collections.abc import Iterator, Sequence

import datasets
import numpy as np
import torch

log = logging.getLogger(__name__)


def native_bf16() -> bool:
    """Whether this CPU computes bfloat16 natively (AVX512-BF16 or AMX); elsewhere
    PyTorch emulates it, which is slower than float32."""
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(getattr(torch.cpu, name, lambda: False)() for name in checks)


def training_precision(bf16: bool) -> contextlib.AbstractContextManager:
    """The forward pass's precision: bfloat16 autocast when asked for and native here
    (weights, optimizer and gradients stay float32), else float32."""
    if not bf16:
        return contextlib.nullcontext()
    if not native_bf16():
        log.warning("bf16 asked for, but this CPU has no native bfloat16: training in float32")
        return contextlib.nullcontext()
    return torch.autocast("cpu", dtype=torch.bfloat16)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def set_threads(num_threads: int | None) -> None:
    torch.set_num_threads(num_threads or os.cpu_count() or 1)


def row_lengths(rows: datasets.Dataset) -> list[int]:
    """The ``length`` column of tokenized rows as a plain list: indexing datasets' lazy
    Column costs a table lookup per review, minutes per epoch when batches are sorted by
    length."""
    return rows.data.column("length").to_pylist()


def length_bucketed_batches(
    lengths: Sequence[int], batch_size: int, rng: random.Random, bucket_batches: int = 50
) -> Iterator[list[int]]:
    """Yield index batches of similar length (little padding) in a shuffled order."""
    order = list(range(len(lengths)))
    rng.shuffle(order)
    batches: list[list[int]] = []
    span = batch_size * bucket_batches
    for start in range(0, len(order), span):
        chunk = sorted(order[start : start + span], key=lambda i: lengths[i])
        batches.extend(chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size))
    rng.shuffle(batches)
    yield from batches


class Budget:
    """Progress through a run limited by steps and, optionally, by wall-clock minutes.

    The learning-rate schedule follows ``fraction`` — whichever limit is nearer — so a
    time-limited run still warms up and decays properly.
    """

    def __init__(
        self,
        total_steps: int,
        max_minutes: float | None,
        step: int = 0,
        elapsed_s: float = 0.0,
    ) -> None:
        """``step`` and ``elapsed_s`` carry on a run resumed from a checkpoint."""
        self.total_steps = max(1, total_steps)
        self.max_seconds = max_minutes * 60 if max_minutes else None
        self.started = time.monotonic() - elapsed_s
        self.step = step

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    @property
    def fraction(self) -> float:
        by_steps = self.step / self.total_steps
        by_time = self.elapsed / self.max_seconds if self.max_seconds else 0.0
        return min(1.0, max(by_steps, by_time))

    @property
    def done(self) -> bool:
        return self.fraction >= 1.0


def warmup_linear_decay(budget: Budget, warmup_fraction: float) -> float:
    """Learning-rate multiplier: linear warm-up, then linear decay to zero."""
    fraction = budget.fraction
    if warmup_fraction > 0 and fraction < warmup_fraction:
        return max(fraction / warmup_fraction, 1e-3)
    return max(0.0, (1.0 - fraction) / max(1e-9, 1.0 - warmup_fraction))


def steps_for(n_examples: int, batch_size: int, epochs: float, max_steps: int | None) -> int:
    steps = math.ceil(n_examples / batch_size * epochs)
    return min(steps, max_steps) if max_steps else steps


def adamw_with_schedule(
    model: torch.nn.Module,
    learning_rate: float,
    weight_decay: float,
    budget: Budget,
    warmup_fraction: float,
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler]:
    optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate, weight_decay=weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda _: warmup_linear_decay(budget, warmup_fraction)
    )
    return optimizer, scheduler


def optimizer_step(
    model: torch.nn.Module,
    loss: torch.Tensor,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    budget: Budget,
) -> None:
    """Backward pass, gradient clipping at 1.0, one optimizer and schedule step."""
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    scheduler.step()
    optimizer.zero_grad(set_to_none=True)
    budget.step += 1
