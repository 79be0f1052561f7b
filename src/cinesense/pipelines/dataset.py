"""Stage *dataset*: review files (and crawled reviews that may train) → a saved dataset,
with ``corpus.json`` beside it saying what went in."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cinesense.config import Settings
from cinesense.files import write_json_atomic
from cinesense.storage import ObjectStore

if TYPE_CHECKING:
    import pandas as pd

    from cinesense.data.dataset import Dataset

log = logging.getLogger(__name__)

CORPUS_INFO = "corpus.json"  # beside a dataset built here: its files and crawled reviews


def default_corpus_files(settings: Settings) -> list[Path]:
    """``data.corpus_files``, else the downloaded Naver corpus, else the bundled sample."""
    from cinesense.data.corpus import sample_corpus_path

    if settings.data.corpus_files:
        return list(settings.data.corpus_files)
    downloaded = settings.corpus_cache_dir / "naver_movie_reviews.tsv.gz"
    if downloaded.exists():
        return [downloaded]
    log.warning(
        "no corpus configured or downloaded: using the small sample bundled with the package "
        "(run `cinesense download` or set CINESENSE_DATA__CORPUS_FILES for real training)"
    )
    return [sample_corpus_path()]


def training_corpus(
    settings: Settings,
    corpus_files: list[Path] | None = None,
    include_crawled: bool = False,
    store: ObjectStore | None = None,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Review files plus, when asked, crawled reviews that may train models (CGV's do not,
    unless an operator allowed it); with a description of what went in."""
    import pandas as pd

    from cinesense.crawl.jobs import as_corpus, read_reviews
    from cinesense.data.corpus import read_corpus

    files = list(corpus_files) if corpus_files else default_corpus_files(settings)
    frames = [read_corpus(path) for path in files]
    info: dict[str, Any] = {
        "files": [str(path) for path in files],
        "crawled_reviews": 0,
        "crawled_until": None,
    }
    if include_crawled:
        crawled = read_reviews(settings, training_only=True, store=store)
        if not crawled.empty:
            frames.append(as_corpus(crawled))
            info["crawled_reviews"] = len(crawled)
            info["crawled_until"] = crawled["crawled_at"].max().isoformat()
    return pd.concat(frames, ignore_index=True), info


def build_training_dataset(
    settings: Settings,
    directory: Path,
    corpus_files: list[Path] | None = None,
    include_crawled: bool = False,
    store: ObjectStore | None = None,
) -> Dataset:
    """Build, check and save a dataset (with ``corpus.json`` saying what went in)."""
    from cinesense.data.dataset import build_dataset, save_dataset

    corpus, info = training_corpus(settings, corpus_files, include_crawled, store)
    dataset = build_dataset(corpus, settings.data)
    save_dataset(dataset, directory)
    write_json_atomic(Path(directory) / CORPUS_INFO, info)
    log.info(
        "dataset %s: %s reviews (%d crawled), fingerprint %s",
        directory,
        dataset.manifest.sizes,
        info["crawled_reviews"],
        dataset.manifest.fingerprint[:12],
    )
    return dataset


def corpus_info(dataset_dir: Path) -> dict[str, Any]:
    path = Path(dataset_dir) / CORPUS_INFO
    return json.loads(path.read_text()) if path.exists() else {}
