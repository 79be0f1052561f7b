from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cinesense.config import DataSettings
from cinesense.data.dataset import (
    SPLITS,
    Dataset,
    balanced_binary,
    build_dataset,
    check_dataset,
    class_weights,
    fingerprint,
    label_for_rating,
    load_dataset,
    save_dataset,
)
from cinesense.errors import DataError


def corpus(rows: list[tuple[str, str, int | None, str]]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "source": "naver",
            "review_id": [r[0] for r in rows],
            "movie_id": [r[1] for r in rows],
            "rating": pd.array([r[2] for r in rows], dtype="Int64"),
            "date": "2015-01-01",
            "text": [r[3] for r in rows],
        }
    )


def synthetic(movies: int = 40, per_movie: int = 10) -> pd.DataFrame:
    rows = []
    for m in range(movies):
        for i in range(per_movie):
            rating = [1, 3, 5, 7, 9, 10][(m + i) % 6]
            rows.append((f"{m}-{i}", f"movie{m}", rating, f"영화 {m} 리뷰 {i}"))
    return corpus(rows)


def test_nsmc_labels() -> None:
    ratings = pd.Series([1, 4, 5, 8, 9, 10, None], dtype="Int64")
    assert label_for_rating(ratings, DataSettings()).tolist() == [0, 0, -1, -1, 1, 1, -1]


def test_sample_dataset_is_movie_disjoint(sample_dataset: Dataset) -> None:
    movies = [set(sample_dataset[s]["movie_id"]) for s in SPLITS]
    assert not movies[0] & movies[1] and not movies[0] & movies[2] and not movies[1] & movies[2]
    sizes = sample_dataset.manifest.sizes
    assert sizes["train"] > sizes["validation"] > 0 and sizes["test"] > 0
    assert sum(sizes.values()) + sum(sample_dataset.manifest.dropped.values()) == 6003


def test_neutral_reviews_are_kept_for_the_rating_task(sample_dataset: Dataset) -> None:
    train = sample_dataset["train"]
    assert set(train["rating"].unique()) == set(range(1, 11))
    assert (train.loc[train["rating"].between(5, 8), "label"] == -1).all()


def test_deduplicates_by_id_and_by_normalized_text() -> None:
    frame = synthetic()
    extra = corpus(
        [
            ("0-0", "movie0", 1, "다른 텍스트"),  # same id as an existing review
            ("x-1", "movie1", 10, "영화 1 리뷰 1 최고"),  # a new text
            ("x-2", "movie2", 10, "영화   2 리뷰 2"),
        ]
    )  # same text once normalized
    dataset = build_dataset(pd.concat([frame, extra], ignore_index=True), DataSettings())
    assert dataset.manifest.dropped["duplicate_id"] == 1
    assert dataset.manifest.dropped["duplicate_text"] == 1
    assert sum(dataset.manifest.sizes.values()) == len(frame) + 1


def test_empty_texts_are_dropped_and_counted() -> None:
    frame = pd.concat(
        [synthetic(), corpus([("e", "movie1", 10, "   "), ("f", "movie1", 1, "")])],
        ignore_index=True,
    )
    assert build_dataset(frame, DataSettings()).manifest.dropped["empty_text"] == 2


def test_split_is_stable_when_reviews_are_added() -> None:
    settings = DataSettings(test_fraction=0.2, validation_fraction=0.2)
    first = build_dataset(synthetic(movies=60), settings)
    more = pd.concat(
        [synthetic(movies=60), corpus([("new", "movie999", 10, "새 영화 리뷰")])], ignore_index=True
    )
    second = build_dataset(more, settings)
    moved = {m for s in SPLITS for m in set(first[s]["movie_id"]) - set(second[s]["movie_id"])}
    assert len(moved) <= 2  # at most the movies at a split boundary move


def test_fingerprint_changes_with_content_and_not_with_order(sample_dataset: Dataset) -> None:
    shuffled = {s: sample_dataset[s].sample(frac=1, random_state=1) for s in SPLITS}
    assert fingerprint(shuffled) == sample_dataset.manifest.fingerprint
    changed = {s: sample_dataset[s].copy() for s in SPLITS}
    changed["test"].loc[changed["test"].index[0], "text"] = "바뀐 리뷰"
    assert fingerprint(changed) != sample_dataset.manifest.fingerprint


def test_same_input_same_dataset() -> None:
    a = build_dataset(synthetic(), DataSettings())
    b = build_dataset(synthetic().sample(frac=1, random_state=3), DataSettings())
    assert a.manifest.fingerprint == b.manifest.fingerprint


def splits_of(dataset: Dataset) -> dict[str, pd.DataFrame]:
    return {s: dataset[s].copy() for s in SPLITS}


@pytest.mark.parametrize(
    ("corrupt", "message"),
    [
        (lambda s: s["test"].__setitem__("movie_id", s["train"]["movie_id"].iloc[0]), "movie"),
        (lambda s: s["train"].loc.__setitem__((s["train"].index[0], "text"), " "), "empty text"),
        (
            lambda s: s["validation"].loc.__setitem__((s["validation"].index[0], "rating"), 11),
            "outside 1-10",
        ),
        (lambda s: s["train"].loc.__setitem__((s["train"].index[0], "label"), 7), "rating rule"),
        (
            lambda s: s["test"].loc.__setitem__(
                (s["test"].index[0], "text"), s["train"]["text"].iloc[0]
            ),
            "leakage",
        ),
        (lambda s: s.__setitem__("test", s["test"].iloc[0:0]), "empty"),
    ],
)
def test_data_checks_fail_loudly(sample_dataset: Dataset, corrupt, message: str) -> None:
    splits = splits_of(sample_dataset)
    corrupt(splits)
    with pytest.raises(DataError, match=message):
        check_dataset(splits, DataSettings())


def test_too_few_movies_for_a_split() -> None:
    with pytest.raises(DataError, match="empty"):
        build_dataset(synthetic(movies=2), DataSettings())


def test_empty_corpus() -> None:
    with pytest.raises(DataError, match="no reviews"):
        build_dataset(synthetic().iloc[0:0], DataSettings())


def test_class_weights_balance_the_binary_loss() -> None:
    weights = class_weights(pd.Series([0, 1, 1, 1, -1]))
    assert weights[0] * 1 == pytest.approx(weights[1] * 3)
    with pytest.raises(DataError):
        class_weights(pd.Series([1, 1, -1]))


def test_balanced_binary(sample_dataset: Dataset) -> None:
    balanced = balanced_binary(sample_dataset["test"], seed=1)
    counts = balanced["label"].value_counts()
    assert counts[0] == counts[1] and -1 not in counts


def test_save_and_load_round_trip(tmp_path: Path, sample_dataset: Dataset) -> None:
    directory = save_dataset(sample_dataset, tmp_path / "ds")
    loaded = load_dataset(directory)
    assert loaded.manifest == sample_dataset.manifest
    assert fingerprint(loaded.splits) == sample_dataset.manifest.fingerprint
    save_dataset(sample_dataset, directory)  # overwriting leaves no staging folders behind
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds"]


def test_load_missing_dataset(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="build-dataset"):
        load_dataset(tmp_path)


def test_nsmc_rows_train_only() -> None:
    nsmc = pd.DataFrame(
        {
            "source": "nsmc",
            "review_id": ["a", "b"],
            "movie_id": "",
            "rating": pd.array([pd.NA, pd.NA], dtype="Int64"),
            "date": "",
            "text": ["좋은 영화", "나쁜 영화"],
            "nsmc_label": [1, 0],
        }
    )
    dataset = build_dataset(pd.concat([synthetic(), nsmc], ignore_index=True), DataSettings())
    train = dataset["train"]
    assert train.loc[train["source"] == "nsmc", "label"].tolist() == [1, 0]
    assert np.isin(["nsmc"], dataset["test"]["source"]).sum() == 0
