"""Fine-tuning with weight averaging validates and keeps the average, not the last step."""

from __future__ import annotations

from pathlib import Path

import pytest
from transformers import AutoModelForSequenceClassification

from cinesense.config import TrainSettings


def _encoder_distance(a: Path, b: Path) -> float:
    first = AutoModelForSequenceClassification.from_pretrained(a).state_dict()
    second = AutoModelForSequenceClassification.from_pretrained(b).state_dict()
    return sum(
        float((first[name].float() - second[name].float()).norm())
        for name in first
        if name.startswith("bert.encoder.")
    )


def test_a_slow_average_stays_near_the_first_step(tmp_path, tiny_model, sample_dataset) -> None:
    from cinesense.model.finetune import finetune
    from tests.conftest import tiny_settings

    runs = {}
    for name, decay in (("latest", None), ("average", 1 - 1e-6)):
        settings = tiny_settings(
            tmp_path / name,
            base_model=str(tiny_model),
            max_steps=12,
            eval_every_steps=12,
            wide_head_epochs=0,
            average_decay=decay,
        )
        result = finetune(sample_dataset, tmp_path / name / "model", settings, progress=False)
        assert result.steps == 12
        runs[name] = _encoder_distance(tiny_model, tmp_path / name / "model")
    # The average of twelve steps at decay ~1 is the first step's weights: it moved far
    # less from the base than the weights after the last step.
    assert runs["average"] < runs["latest"] / 3


def test_an_average_decay_outside_zero_and_one_is_refused() -> None:
    with pytest.raises(ValueError, match="average_decay"):
        TrainSettings(average_decay=1.0)
