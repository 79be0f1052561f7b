"""Resumable training: the model, the optimizer and the progress saved beside the output.

A checkpoint belongs to one run: the same data (fingerprint) and the same model-shaping
settings; a checkpoint from anything else is ignored with a warning. The budget settings
(``epochs``, ``max_steps``, ``max_minutes``) and the precision (bf16) may change between
sittings, which is how an interrupted or finished run goes on.

- Pretraining keeps its checkpoint, so a finished run can be extended by raising its
  budget; the masking may change too (a run stuck on whole-word masking can go on with
  token masking from where it is).
- Fine-tuning also keeps the best weights so far, the weight average and the validation
  history; its checkpoint is removed once the model is saved.

A resumed run shuffles the training data with a seed that includes the step it resumes
at: it goes on with fresh batches, not with the exact order the cut-off run would have
seen next.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from transformers import (
    AutoModelForSequenceClassification,
    AutoTokenizer,
    BertForMaskedLM,
    PreTrainedModel,
)

from cinesense.config import PretrainSettings, TrainSettings
from cinesense.files import atomic_directory
from cinesense.model.loop import Budget

log = logging.getLogger(__name__)
STATE_FILE = "training_state.pt"
META_FILE = "checkpoint.json"
BUDGET_FIELDS = {"epochs", "max_steps", "max_minutes", "checkpoint_every_minutes"}
MASKING_FIELDS = {"whole_word_mask"}
PRECISION_FIELDS = {"bf16"}
NOT_IDENTITY = BUDGET_FIELDS | MASKING_FIELDS | PRECISION_FIELDS
# What happens after fine-tuning's loop, or only decides when it stops, is not identity.
FINETUNE_NOT_IDENTITY = (
    BUDGET_FIELDS | PRECISION_FIELDS | {"early_stopping_patience", "wide_head_epochs"}
)


def checkpoint_dir(out_dir: Path) -> Path:
    return out_dir.with_name(f"{out_dir.name}.checkpoint")


class TrainingCheckpoint:
    """The model as a Hugging Face directory, the rest of the state in ``STATE_FILE``,
    identity and progress in ``META_FILE``; written atomically."""

    def __init__(self, directory: Path, identity: dict[str, Any]) -> None:
        self.directory = directory
        self.identity = identity

    def matches(self, identity: dict[str, Any]) -> bool:
        return identity == self.identity

    def read(self) -> tuple[dict[str, Any], dict[str, Any]] | None:
        """(progress, state) of a checkpoint of this run, or None."""
        meta_path = self.directory / META_FILE
        if not meta_path.exists():
            return None
        meta = json.loads(meta_path.read_text())
        if not self.matches(meta.pop("identity")):
            log.warning(
                "ignoring the checkpoint in %s: it was made from other data or settings",
                self.directory,
            )
            return None
        return meta, torch.load(self.directory / STATE_FILE, weights_only=True)

    def write(
        self, save_model: Callable[[Path], None], state: dict[str, Any], progress: dict[str, Any]
    ) -> None:
        with atomic_directory(self.directory) as staging:
            save_model(staging)
            torch.save(state, staging / STATE_FILE)
            meta = {"identity": self.identity, **progress}
            (staging / META_FILE).write_text(json.dumps(meta, indent=2))
        log.info("training checkpoint at step %d in %s", progress["step"], self.directory)

    def remove(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)


@dataclass
class ResumeState:
    model: BertForMaskedLM
    tokenizer: Any
    optimizer: dict[str, Any]
    torch_rng: torch.Tensor
    step: int
    elapsed_s: float
    loss: float


class PretrainCheckpoint(TrainingCheckpoint):
    def __init__(self, directory: Path, fingerprint: str, settings: PretrainSettings) -> None:
        identity = {
            "data_fingerprint": fingerprint,
            "settings": settings.model_dump(exclude=NOT_IDENTITY),
        }
        super().__init__(directory, identity)

    def matches(self, identity: dict[str, Any]) -> bool:
        """Checkpoints written before the masking could change carry it in their identity."""
        masking = {
            k: identity["settings"].pop(k) for k in MASKING_FIELDS if k in identity["settings"]
        }
        if masking and identity == self.identity:
            log.info(
                "the checkpoint was trained with %s; resuming with the current masking", masking
            )
        return identity == self.identity

    def load(self) -> ResumeState | None:
        found = self.read()
        if found is None:
            return None
        meta, state = found
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
        def save_model(staging: Path) -> None:
            model.save_pretrained(staging)
            tokenizer.save_pretrained(staging)

        state = {"optimizer": optimizer.state_dict(), "torch_rng": torch.get_rng_state()}
        self.write(
            save_model, state, {"step": budget.step, "elapsed_s": budget.elapsed, "loss": loss}
        )


@dataclass
class FinetuneProgress:
    """How far a fine-tuning run got, and what early stopping and the weight average had
    gathered by then."""

    step: int
    elapsed_s: float
    best_accuracy: float
    best_step: int
    misses: int
    best_state: dict[str, torch.Tensor] | None
    average: dict[str, torch.Tensor] | None
    history: list[dict[str, float]]


@dataclass
class FinetuneState:
    """Where a cut-off fine-tuning run stood."""

    model: PreTrainedModel
    optimizer: dict[str, Any]
    torch_rng: torch.Tensor
    progress: FinetuneProgress


class FinetuneCheckpoint(TrainingCheckpoint):
    def __init__(
        self,
        directory: Path,
        fingerprint: str,
        base: str,
        base_manifest: dict[str, Any] | None,
        settings: TrainSettings,
    ) -> None:
        identity = {
            "data_fingerprint": fingerprint,
            "base": base,
            "base_manifest": base_manifest,
            "settings": settings.model_dump(exclude=FINETUNE_NOT_IDENTITY),
        }
        # Compared with what JSON gives back (tuples become lists).
        super().__init__(directory, json.loads(json.dumps(identity)))

    def load(self) -> FinetuneState | None:
        found = self.read()
        if found is None:
            return None
        meta, state = found
        return FinetuneState(
            model=AutoModelForSequenceClassification.from_pretrained(self.directory),
            optimizer=state["optimizer"],
            torch_rng=state["torch_rng"],
            progress=FinetuneProgress(
                best_state=state["best_state"], average=state["average"], **meta
            ),
        )

    def save(self, model: PreTrainedModel, optimizer, progress: FinetuneProgress) -> None:
        state = {
            "optimizer": optimizer.state_dict(),
            "torch_rng": torch.get_rng_state(),
            "best_state": progress.best_state,
            "average": progress.average,
        }
        meta = {k: v for k, v in asdict(progress).items() if k not in ("best_state", "average")}
        self.write(model.save_pretrained, state, meta)
