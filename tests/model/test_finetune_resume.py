"""Fine-tuning saves checkpoints, and a run cut off mid-way resumes from them."""

from __future__ import annotations

import json
import logging

import pytest
import torch

import cinesense.model.finetune as finetune_module
from cinesense.model.checkpoint import META_FILE, STATE_FILE, checkpoint_dir
from cinesense.model.finetune import finetune
from tests.conftest import tiny_settings


class MachineStopped(Exception):
    pass


def _stopping_at(step: int):
    """``optimizer_step`` that stops the run (as a machine stop would) after ``step``."""
    real = finetune_module.optimizer_step

    def step_then_maybe_stop(model, loss, optimizer, scheduler, budget):
        real(model, loss, optimizer, scheduler, budget)
        if budget.step == step:
            raise MachineStopped

    return step_then_maybe_stop


def _settings(home, base, **train):
    options = dict(
        base_model=str(base),
        max_steps=6,
        eval_every_steps=2,
        wide_head_epochs=0,
        checkpoint_every_minutes=1e-6,
    )
    return tiny_settings(home, **{**options, **train})


def _cut_off(dataset, out, settings, monkeypatch, at: int) -> None:
    """Fine-tune until the machine stops after step ``at``."""
    with monkeypatch.context() as patch:
        patch.setattr(finetune_module, "optimizer_step", _stopping_at(at))
        with pytest.raises(MachineStopped):
            finetune(dataset, out, settings, progress=False)


def test_a_cut_off_run_resumes_where_its_checkpoint_is(
    tmp_path, tiny_base, sample_dataset, monkeypatch, caplog
):
    settings = _settings(tmp_path, tiny_base, average_decay=0.9)
    out = tmp_path / "model"
    _cut_off(sample_dataset, out, settings, monkeypatch, at=4)
    meta = json.loads((checkpoint_dir(out) / META_FILE).read_text())
    assert meta["step"] == 3  # saved after step 3; step 4 never reached its checkpoint
    assert [h["step"] for h in meta["history"]] == [2]
    state = torch.load(checkpoint_dir(out) / STATE_FILE, weights_only=True)
    assert int(state["average"]["n_averaged"]) == 3
    assert state["best_state"] is not None

    with caplog.at_level(logging.INFO, logger="cinesense.model.finetune"):
        result = finetune(sample_dataset, out, settings, progress=False)
    assert "resuming fine-tuning at step 3" in caplog.text
    assert result.steps == 6
    assert [h["step"] for h in result.history] == [2, 4, 6]
    assert result.best_step in (2, 4, 6)
    assert not checkpoint_dir(out).exists(), "the checkpoint is removed once the model is saved"
    manifest = json.loads((out / "training_manifest.json").read_text())
    assert manifest["steps"] == 6


def test_a_longer_budget_goes_on_from_the_checkpoint(
    tmp_path, tiny_base, sample_dataset, monkeypatch
):
    out = tmp_path / "model"
    _cut_off(sample_dataset, out, _settings(tmp_path, tiny_base), monkeypatch, at=3)
    longer = _settings(tmp_path, tiny_base, max_steps=8, bf16=True)
    assert finetune(sample_dataset, out, longer, progress=False).steps == 8


def test_a_checkpoint_of_other_settings_is_not_resumed(
    tmp_path, tiny_base, sample_dataset, monkeypatch, caplog
):
    out = tmp_path / "model"
    _cut_off(sample_dataset, out, _settings(tmp_path, tiny_base), monkeypatch, at=3)
    other = _settings(tmp_path, tiny_base, learning_rate=5e-4)
    with caplog.at_level(logging.INFO):
        result = finetune(sample_dataset, out, other, progress=False)
    assert "made from other data or settings" in caplog.text
    assert "resuming" not in caplog.text
    assert [h["step"] for h in result.history] == [2, 4, 6]


def test_no_checkpoint_when_checkpoints_are_off(tmp_path, tiny_base, sample_dataset, monkeypatch):
    out = tmp_path / "model"
    settings = _settings(tmp_path, tiny_base, checkpoint_every_minutes=None)
    _cut_off(sample_dataset, out, settings, monkeypatch, at=3)
    assert not checkpoint_dir(out).exists()
