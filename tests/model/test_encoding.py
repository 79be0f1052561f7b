"""Tokenized training rows as Arrow-backed datasets (fine-tuning and pretraining)."""

from __future__ import annotations

from transformers import AutoTokenizer

from cinesense.config import PretrainSettings, TrainSettings
from cinesense.model.finetune import EncodedReviews, _training_rows
from cinesense.model.pretrain import encode_texts


def test_lengths_are_a_plain_list_of_each_rows_length(tmp_path, tiny_base, sample_dataset):
    """The batch sampler indexes the lengths once per review and epoch: they must be a
    list, not datasets' lazy Column (a table lookup per index)."""
    tokenizer = AutoTokenizer.from_pretrained(tiny_base)
    rows = _training_rows(sample_dataset["train"], TrainSettings())
    reviews = EncodedReviews.encode(rows, tokenizer, 64, tmp_path / "cache")
    texts = encode_texts(tokenizer, list(rows["text"]), PretrainSettings(max_length=64))
    for encoded in (reviews, texts):
        lengths = encoded.lengths
        assert type(lengths) is list and len(lengths) == len(rows)
        assert lengths == [len(ids) for ids in encoded.rows["input_ids"]]
