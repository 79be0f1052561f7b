"""Build a labelled, deduplicated, movie-disjoint dataset and check it.

Labels follow NSMC: ratings ``<= negative_max_rating`` (1–4) are negative (0), ratings
``>= positive_min_rating`` (9–10) positive (1), the rest neutral (-1): neutral reviews stay
in every split because the 1–10 rating estimate learns from and is scored on all ratings.

Class balance is handled by loss weights in training (see ``class_weights``) and by
evaluating binary metrics on a class-balanced test subset, as NSMC does; no training
review is thrown away.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from cinesense.config import DataSettings
from cinesense.errors import DataError
from cinesense.files import atomic_directory
from cinesense.text import normalize_review

SPLITS = ("train", "validation", "test")
NEUTRAL = -1


@dataclass
class DatasetManifest:
    fingerprint: str
    sizes: dict[str, int]
    label_counts: dict[str, dict[str, int]]
    movies: dict[str, int]
    sources: list[str]
    dropped: dict[str, int]
    settings: dict[str, object]
    created_at: str = field(default_factory=lambda: time.strftime("%Y-%m-%dT%H:%M:%S%z"))


@dataclass
class Dataset:
    splits: dict[str, pd.DataFrame]
    manifest: DatasetManifest

    def __getitem__(self, split: str) -> pd.DataFrame:
        return self.splits[split]


def label_for_rating(rating: pd.Series, settings: DataSettings) -> pd.Series:
    label = pd.Series(NEUTRAL, index=rating.index, dtype="int64")
    label[(rating <= settings.negative_max_rating).fillna(False)] = 0
    label[(rating >= settings.positive_min_rating).fillna(False)] = 1
    return label


def build_dataset(
    corpus: pd.DataFrame, settings: DataSettings, sources: list[str] | None = None
) -> Dataset:
    """Normalize, label, deduplicate, split by movie, fingerprint and check ``corpus``."""
    frame, dropped = prepare_reviews(corpus, settings)
    frame["split"] = assign_splits(frame, settings)
    splits = {
        name: frame[frame["split"] == name].drop(columns="split").reset_index(drop=True)
        for name in SPLITS
    }
    check_dataset(splits, settings)
    manifest = DatasetManifest(
        fingerprint=fingerprint(splits),
        sizes={name: len(part) for name, part in splits.items()},
        label_counts={
            name: {str(k): int(v) for k, v in part["label"].value_counts().sort_index().items()}
            for name, part in splits.items()
        },
        movies={name: int(part["movie_id"].nunique()) for name, part in splits.items()},
        sources=sources or sorted(frame["source"].unique().tolist()),
        dropped=dropped,
        settings=settings.model_dump(),
    )
    return Dataset(splits, manifest)


def prepare_reviews(
    corpus: pd.DataFrame, settings: DataSettings
) -> tuple[pd.DataFrame, dict[str, int]]:
    """Normalize text, drop empty and duplicate reviews, add labels; count what was dropped."""
    frame, dropped = _clean(corpus, settings)
    frame["label"] = label_for_rating(frame["rating"], settings)
    if "nsmc_label" in frame:
        known = frame["nsmc_label"].notna()
        frame.loc[known, "label"] = frame.loc[known, "nsmc_label"].astype(int)
        frame = frame.drop(columns="nsmc_label")
    return frame, dropped


def _clean(corpus: pd.DataFrame, settings: DataSettings) -> tuple[pd.DataFrame, dict[str, int]]:
    if corpus.empty:
        raise DataError("The corpus holds no reviews; nothing to build a dataset from.")
    frame = corpus.copy()
    frame["text"] = [normalize_review(t) for t in frame["text"].astype(str)]
    too_short = frame["text"].str.len() < settings.min_text_chars
    frame = frame[~too_short]
    before = len(frame)
    frame = frame.drop_duplicates(subset=["source", "review_id"], keep="first")
    by_id = before - len(frame)
    before = len(frame)
    frame = frame.drop_duplicates(subset=["text"], keep="first")
    by_text = before - len(frame)
    if frame.empty:
        raise DataError("Every review was empty after normalization; check the input file.")
    dropped = {"empty_text": int(too_short.sum()), "duplicate_id": by_id, "duplicate_text": by_text}
    return frame.reset_index(drop=True), dropped


def assign_splits(frame: pd.DataFrame, settings: DataSettings) -> pd.Series:
    """Split by movie: whole movies go to one split, in a seeded hash order.

    Movies are shuffled by a hash of (seed, movie id) — stable across dataset versions, so
    a movie stays on its side when new reviews arrive — and then filled into test and
    validation until each holds its fraction of the reviews. Rows without a movie id (NSMC
    files) cannot be held out by movie and all go to train.
    """
    known = frame["movie_id"].astype(str) != ""
    counts = frame.loc[known, "movie_id"].astype(str).value_counts()
    order = sorted(counts.index, key=lambda m: _stable_hash(f"{settings.seed}:{m}"))
    total = int(counts.sum())
    targets = [("test", settings.test_fraction), ("validation", settings.validation_fraction)]
    movie_split: dict[str, str] = {}
    movies = iter(order)
    filled = 0
    bound = 0.0
    for name, fraction in targets:
        bound += fraction * total
        while filled < bound and (movie := next(movies, None)) is not None:
            movie_split[movie] = name
            filled += int(counts[movie])
    for movie in movies:
        movie_split[movie] = "train"
    split = frame["movie_id"].astype(str).map(movie_split).fillna("train")
    return split


def _stable_hash(value: str) -> int:
    return int.from_bytes(hashlib.blake2b(value.encode(), digest_size=8).digest(), "big")


def fingerprint(splits: dict[str, pd.DataFrame]) -> str:
    """SHA-256 over every split's (source, id, movie, rating, label, text), order-free."""
    digest = hashlib.sha256()
    for name in SPLITS:
        part = splits[name].sort_values(["source", "review_id"])
        digest.update(f"[{name}:{len(part)}]".encode())
        for row in part[["source", "review_id", "movie_id", "rating", "label", "text"]].itertuples(
            index=False
        ):
            digest.update("\x1f".join("" if pd.isna(v) else str(v) for v in row).encode())
            digest.update(b"\x1e")
    return digest.hexdigest()


def check_dataset(splits: dict[str, pd.DataFrame], settings: DataSettings) -> None:
    """Fail loudly on anything that would make training or evaluation wrong."""
    problems: list[str] = []
    for name in SPLITS:
        part = splits.get(name)
        if part is None or part.empty:
            problems.append(f"split '{name}' is empty (too few movies for the split fractions?)")
            continue
        empty = part["text"].astype(str).str.strip() == ""
        if empty.any():
            problems.append(f"{name}: {int(empty.sum())} review(s) with empty text")
        rating = part["rating"]
        out_of_range = ((rating < 1) | (rating > 10)).fillna(False)
        if out_of_range.any():
            problems.append(f"{name}: {int(out_of_range.sum())} rating(s) outside 1-10")
        rated = rating.notna()
        expected = label_for_rating(rating[rated], settings)
        if (expected != part.loc[rated, "label"]).any():
            problems.append(f"{name}: labels that do not follow the rating rule")
    if problems:
        raise DataError("Dataset check failed: " + "; ".join(problems) + ".")
    for i, first in enumerate(SPLITS):
        for second in SPLITS[i + 1 :]:
            a, b = splits[first], splits[second]
            movies = (set(a["movie_id"]) & set(b["movie_id"])) - {""}
            if movies:
                problems.append(f"{len(movies)} movie(s) in both {first} and {second}")
            texts = set(a["text"]) & set(b["text"])
            if texts:
                problems.append(
                    f"{len(texts)} identical text(s) in both {first} and {second} (label leakage)"
                )
            ids = set(zip(a["source"], a["review_id"], strict=True)) & set(
                zip(b["source"], b["review_id"], strict=True)
            )
            if ids:
                problems.append(f"{len(ids)} review id(s) in both {first} and {second}")
    train_labels = set(splits["train"]["label"].unique())
    if not {0, 1} <= train_labels:
        problems.append("train split lacks negative or positive reviews")
    if problems:
        raise DataError("Dataset check failed: " + "; ".join(problems) + ".")


def class_weights(labels: pd.Series) -> np.ndarray:
    """Inverse-frequency weights for labels 0 and 1 (neutral rows ignored), mean 1."""
    counts = np.array([(labels == 0).sum(), (labels == 1).sum()], dtype=float)
    if (counts == 0).any():
        raise DataError("Training data needs both negative and positive reviews.")
    weights = counts.sum() / (2.0 * counts)
    return weights


def balanced_binary(frame: pd.DataFrame, seed: int) -> pd.DataFrame:
    """Binary-labelled rows with the majority class downsampled to the minority's size."""
    binary = frame[frame["label"] != NEUTRAL]
    n = int(binary["label"].value_counts().min()) if binary["label"].nunique() == 2 else 0
    if n == 0:
        raise DataError("Evaluation data needs both negative and positive reviews.")
    parts = [binary[binary["label"] == k].sample(n=n, random_state=seed) for k in (0, 1)]
    return pd.concat(parts).sort_index()


# --- persistence ------------------------------------------------------------------------


def save_dataset(dataset: Dataset, directory: Path) -> Path:
    """Write the splits as Parquet plus ``manifest.json``, atomically."""
    with atomic_directory(Path(directory)) as staging:
        for name, part in dataset.splits.items():
            part.to_parquet(staging / f"{name}.parquet", index=False)
        (staging / "manifest.json").write_text(
            json.dumps(asdict(dataset.manifest), ensure_ascii=False, indent=2)
        )
    return Path(directory)


def load_dataset(directory: Path) -> Dataset:
    directory = Path(directory)
    manifest_path = directory / "manifest.json"
    if not manifest_path.exists():
        raise DataError(
            f"{directory}: no dataset here (manifest.json missing). Build one with "
            "`cinesense build-dataset`."
        )
    manifest = DatasetManifest(**json.loads(manifest_path.read_text()))
    splits = {}
    for name in SPLITS:
        path = directory / f"{name}.parquet"
        if not path.exists():
            raise DataError(f"{directory}: split file {path.name} is missing; rebuild the dataset.")
        splits[name] = pd.read_parquet(path)
    return Dataset(splits, manifest)


def as_hf_dataset(directory: Path):
    """A saved dataset version as a Hugging Face ``DatasetDict`` (memory-mapped Arrow), read
    with ``datasets.load_dataset("parquet", …)`` — the form the ecosystem's tools expect."""
    import datasets

    directory = Path(directory)
    load_dataset(directory)  # the same checks and clear errors as for our own reader
    files = {name: str(directory / f"{name}.parquet") for name in SPLITS}
    return datasets.load_dataset("parquet", data_files=files, cache_dir=str(directory / ".hf"))
