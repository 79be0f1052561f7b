"""Sizes of the self-built Korean BERT. ``tiny`` is for tests, ``small`` for real use."""

from __future__ import annotations

from dataclasses import dataclass

from transformers import BertConfig


@dataclass(frozen=True)
class Preset:
    vocab_size: int
    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    intermediate_size: int

    def bert_config(self, vocab_size: int, max_length: int) -> BertConfig:
        return BertConfig(
            vocab_size=vocab_size,
            hidden_size=self.hidden_size,
            num_hidden_layers=self.num_hidden_layers,
            num_attention_heads=self.num_attention_heads,
            intermediate_size=self.intermediate_size,
            max_position_embeddings=max(max_length, 128),
            hidden_dropout_prob=0.1,
            attention_probs_dropout_prob=0.1,
        )


PRESETS: dict[str, Preset] = {
    "tiny": Preset(
        vocab_size=2000,
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=128,
    ),
    "small": Preset(
        vocab_size=16000,
        hidden_size=256,
        num_hidden_layers=4,
        num_attention_heads=4,
        intermediate_size=1024,
    ),
}
