"""Pretraining saves checkpoints and a rerun continues from them."""

from __future__ import annotations

import json

import pytest

from cinesense.model.checkpoint import META_FILE
from cinesense.model.pretrain import checkpoint_dir, pretrain
from tests.conftest import TINY_PRETRAIN

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def texts(sample_dataset) -> list[str]:
    return list(sample_dataset["train"]["text"])[:800]


def test_a_rerun_resumes_from_the_checkpoint_and_extends_the_budget(tmp_path, texts):
    settings = TINY_PRETRAIN.model_copy(update={"max_steps": 4, "checkpoint_every_minutes": 1e-6})
    first = pretrain(texts, tmp_path / "base", settings, progress=False)
    assert first.steps == 4
    meta = json.loads((checkpoint_dir(tmp_path / "base") / META_FILE).read_text())
    assert meta["step"] == 4

    longer = settings.model_copy(update={"max_steps": 7})
    second = pretrain(texts, tmp_path / "base", longer, progress=False)
    assert second.steps == 7
    assert second.minutes >= first.minutes


def test_a_checkpoint_from_other_settings_is_not_resumed(tmp_path, texts):
    settings = TINY_PRETRAIN.model_copy(update={"max_steps": 3})
    pretrain(texts, tmp_path / "base", settings, progress=False)
    other = settings.model_copy(update={"mlm_probability": 0.2})
    assert pretrain(texts, tmp_path / "base", other, progress=False).steps == 3


def test_a_run_goes_on_with_another_masking(tmp_path, texts):
    """Masking shapes neither the model nor the tokenizer: a run started with whole-word
    masking may continue with token masking from its checkpoint."""
    settings = TINY_PRETRAIN.model_copy(update={"max_steps": 3, "whole_word_mask": True})
    pretrain(texts, tmp_path / "base", settings, progress=False)
    tokens = settings.model_copy(update={"max_steps": 5, "whole_word_mask": False})
    assert pretrain(texts, tmp_path / "base", tokens, progress=False).steps == 5
    manifest = json.loads((tmp_path / "base" / "cinesense_manifest.json").read_text())
    assert manifest["settings"]["whole_word_mask"] is False


def test_whole_word_masking_masks_every_piece_of_a_word(tmp_path, texts):
    from transformers import AutoTokenizer

    from cinesense.model.pretrain import encode_texts, mlm_collator

    settings = TINY_PRETRAIN.model_copy(update={"max_steps": 2, "whole_word_mask": True})
    assert pretrain(texts, tmp_path / "base", settings, progress=False).steps == 2
    tokenizer = AutoTokenizer.from_pretrained(tmp_path / "base")
    examples = encode_texts(tokenizer, texts[:64], settings)
    collator = mlm_collator(tokenizer, 0.5, whole_word_mask=True)
    batch = collator(examples.batch(list(range(len(examples)))))
    tokens = [tokenizer.convert_ids_to_tokens(ids) for ids in examples.rows["input_ids"]]
    masked = batch["labels"] != -100
    for row, pieces in enumerate(tokens):
        for i in range(1, len(pieces)):
            if pieces[i].startswith("##"):
                assert masked[row, i] == masked[row, i - 1], pieces
