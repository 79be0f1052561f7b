"""Resumable pretraining: model, tokenizer, optimizer and progress saved beside the output.

A checkpoint belongs to one run: the same texts (fingerprint) and the same model-shaping
settings. The budget settings (``epochs``, ``max_steps``, ``max_minutes``) may change
between sittings, which is how a finished run is extended, and so may the masking (a run
stuck on whole-word masking can go on with token masking from where it is) and the
precision (bf16).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from transformers import AutoTokenizer, BertForMaskedLM

from cinesense.config import PretrainSettings
from cinesense.files import atomic_directory
from cinesense.model.loop import Budget

log = logging.getLogger(__name__)
STATE_FILE = "training_state.pt"
META_FILE = "checkpoint.json"
BUDGET_FIELDS = {"epochs", "max_steps", "max_minutes", "checkpoint_every_minutes"}
MASKING_FIELDS = {"whole_word_mask"}
PRECISION_FIELDS = {"bf16"}
NOT_IDENTITY = BUDGET_FIELDS | MASKING_FIELDS | PRECISION_FIELDS


@dataclass
class ResumeState:
    model: BertForMaskedLM
    tokenizer: Any
    optimizer: dict[str, Any]
    torch_rng: torch.Tensor
    step: int
    elapsed_s: float
    loss: float


class PretrainCheckpoint:
    def __init__(self, directory: Path, fingerprint: str, settings: PretrainSettings) -> None:
        self.directory = directory
        self.identity = {
            "data_fingerprint": fingerprint,
            "settings": settings.model_dump(exclude=NOT_IDENTITY),
        }

    def load(self) -> ResumeState | None:
        meta_path = self.directory / META_FILE
        if not meta_path.exists():
            return None
        meta = json.loads(meta_path.read_text())
        identity = meta["identity"]
        masking = {
            k: identity["settings"].pop(k) for k in MASKING_FIELDS if k in identity["settings"]
        }
        if identity != self.identity:
            log.warning(
                "ignoring the checkpoint in %s: it was made from other data or settings",
                self.directory,
            )
            return None
        if masking:
            log.info(
                "the checkpoint was trained with %s; resuming with the current masking", masking
            )
        state = torch.load(self.directory / STATE_FILE, weights_only=True)
        return ResumeState(
            model=BertForMaskedLM.from_pretrained(self.directory),
            tokenizer=AutoTokenizer.from_pretrained(self.directory),
            optimizer=state["optimizer"],
            torch_rng=state["torch_rng"],
            step=meta["step"],
            elapsed_s=meta["elapsed_s"],
            loss=meta["loss"],
        )

    def save(
        self, model: BertForMaskedLM, tokenizer, optimizer, budget: Budget, loss: float
    ) -> None:
        with atomic_directory(self.directory) as staging:
            model.save_pretrained(staging)
            tokenizer.save_pretrained(staging)
            torch.save(
                {"optimizer": optimizer.state_dict(), "torch_rng": torch.get_rng_state()},
                staging / STATE_FILE,
            )
            meta = {
                "identity": self.identity,
                "step": budget.step,
                "elapsed_s": budget.elapsed,
                "loss": loss,
            }
            (staging / META_FILE).write_text(json.dumps(meta, indent=2))
        log.info("pretraining checkpoint at step %d in %s", budget.step, self.directory)
