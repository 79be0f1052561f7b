"""A saved dataset version reads back with Hugging Face datasets."""

from __future__ import annotations

from cinesense.data.dataset import as_hf_dataset, save_dataset


def test_a_saved_dataset_loads_with_load_dataset_parquet(tmp_path, sample_dataset) -> None:
    directory = save_dataset(sample_dataset, tmp_path / "v1")
    loaded = as_hf_dataset(directory)
    assert set(loaded) == {"train", "validation", "test"}
    for split in loaded:
        assert loaded[split].num_rows == len(sample_dataset[split])
        assert loaded[split]["text"][:5] == list(sample_dataset[split]["text"][:5])
