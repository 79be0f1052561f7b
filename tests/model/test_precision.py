"""bfloat16 training: the same loss within bfloat16's rounding, float32 where not native."""

from __future__ import annotations

import json
import math

import pytest
import torch
from transformers import BertForMaskedLM

from cinesense.model import loop
from cinesense.model.finetune import finetune
from cinesense.model.loop import native_bf16, training_precision
from cinesense.model.presets import PRESETS
from cinesense.model.pretrain import checkpoint_dir, masked_lm_loss, pretrain
from tests.conftest import TINY_PRETRAIN, tiny_settings


def _batch() -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    input_ids = torch.randint(5, 2000, (8, 24), generator=generator)
    labels = torch.full_like(input_ids, -100)
    labels[:, ::5] = input_ids[:, ::5]
    return {
        "input_ids": input_ids,
        "attention_mask": torch.ones_like(input_ids),
        "labels": labels,
    }


def test_float32_unless_asked_for() -> None:
    with training_precision(False):
        assert not torch.is_autocast_enabled("cpu")


def test_a_cpu_without_native_bfloat16_trains_in_float32(monkeypatch, caplog) -> None:
    monkeypatch.setattr(loop, "native_bf16", lambda: False)
    with training_precision(True):
        assert not torch.is_autocast_enabled("cpu")
    assert "no native bfloat16" in caplog.text


@pytest.mark.skipif(not native_bf16(), reason="this CPU has no native bfloat16")
def test_bfloat16_gives_the_float32_loss_within_its_rounding() -> None:
    torch.manual_seed(0)
    model = BertForMaskedLM(PRESETS["tiny"].bert_config(2000, 128)).eval()
    batch = _batch()
    full = masked_lm_loss(model, batch)
    with training_precision(True):
        assert torch.is_autocast_enabled("cpu")
        half = masked_lm_loss(model, batch)
    assert half.dtype == torch.float32
    assert abs(half.item() - full.item()) < 0.02 * full.item()


@pytest.mark.slow
def test_a_float32_run_goes_on_in_bfloat16(tmp_path, sample_dataset) -> None:
    """Precision shapes neither the model nor the tokenizer: a checkpoint resumes in it."""
    texts = list(sample_dataset["train"]["text"])[:800]
    settings = TINY_PRETRAIN.model_copy(update={"max_steps": 3, "checkpoint_every_minutes": 1e-6})
    pretrain(texts, tmp_path / "base", settings, progress=False)
    faster = settings.model_copy(update={"max_steps": 5, "bf16": True})
    result = pretrain(texts, tmp_path / "base", faster, progress=False)
    assert result.steps == 5
    assert math.isfinite(result.final_loss)
    meta = json.loads((checkpoint_dir(tmp_path / "base") / "checkpoint.json").read_text())
    assert meta["step"] == 5


@pytest.mark.slow
@pytest.mark.skipif(not native_bf16(), reason="this CPU has no native bfloat16")
def test_pretraining_in_bfloat16_learns_as_float32_does(sample_dataset, tmp_path) -> None:
    texts = list(sample_dataset["train"]["text"])[:2000]
    loss = {}
    for bf16 in (False, True):
        settings = TINY_PRETRAIN.model_copy(update={"max_steps": 60, "bf16": bf16})
        loss[bf16] = pretrain(texts, tmp_path / str(bf16), settings, progress=False).final_loss
    assert loss[False] < math.log(2000)  # it learned: below a uniform guess
    assert loss[True] == pytest.approx(loss[False], rel=0.03)


@pytest.mark.slow
def test_fine_tuning_runs_in_bfloat16(sample_dataset, tiny_base, tmp_path) -> None:
    settings = tiny_settings(
        tmp_path, base_model=str(tiny_base), max_steps=20, bf16=True, wide_head_epochs=0
    )
    result = finetune(sample_dataset, tmp_path / "model", settings, progress=False)
    assert result.steps == 20
    assert all(math.isfinite(record["loss"]) for record in result.history)
