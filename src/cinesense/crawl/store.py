"""The review store: Parquet parts, raw payloads and per-movie manifests in object storage.

Layout under ``<prefix>`` (``reviews`` by default), partitioned by source and crawl date::

    parsed/source=megabox/crawl_date=2026-11-23/movie=24036800-<run>-000.parquet
    raw/source=megabox/crawl_date=2026-11-23/movie=24036800-<run>-000.jsonl.gz
    manifests/source=megabox/movie=24036800.json

The manifest is the commit point. A commit writes the part and its raw payloads first
(each object appears whole or not at all: see :mod:`cinesense.storage`) and then
replaces the manifest, which lists the parts, the newest review seen, whether the crawl
has reached the movie's oldest review, and recent runs. Readers follow manifests only,
so a crawl interrupted before its manifest write leaves at most an orphan part that no
reader sees and that is deleted when possible; the manifest never advances past data
that is not stored. Reviews are deduplicated by (source, review id) across runs.
"""

from __future__ import annotations

import gzip
import io
import json
import logging
from collections.abc import Sequence
from datetime import datetime

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import BaseModel, Field, ValidationError

from cinesense.crawl.records import (
    REVIEW_COLUMNS,
    REVIEW_SCHEMA,
    Review,
    ReviewPage,
    reviews_to_table,
)
from cinesense.errors import StorageError
from cinesense.storage import ObjectStore

log = logging.getLogger(__name__)

MANIFEST_VERSION = 1
KEEP_RUNS = 20
PANDAS_TYPES = {
    pa.int8(): pd.Int8Dtype(),
    pa.int16(): pd.Int16Dtype(),
    pa.int32(): pd.Int32Dtype(),
    pa.bool_(): pd.BooleanDtype(),
}


class PartInfo(BaseModel):
    key: str
    raw_key: str
    rows: int
    crawl_date: str
    run_id: str


class RunInfo(BaseModel):
    run_id: str
    started_at: datetime
    finished_at: datetime
    new: int
    duplicate: int
    pages: int
    requests: int
    stopped: str  # "end", "known", "max_reviews"
    dropped: dict[str, int] = Field(default_factory=dict)


class MovieManifest(BaseModel):
    schema_version: int = MANIFEST_VERSION
    source: str
    movie_id: str
    title: str = ""
    review_count: int = 0
    complete: bool = Field(
        False, description="A crawl has paged down to the oldest review with no gap since."
    )
    newest_review_id: str | None = None
    newest_review_at: datetime | None = None
    allow_training: bool | None = None
    parts: list[PartInfo] = Field(default_factory=list)
    runs: list[RunInfo] = Field(default_factory=list)
    updated_at: datetime | None = None


class ReviewStore:
    def __init__(self, objects: ObjectStore, prefix: str = "reviews") -> None:
        self.objects = objects
        self.prefix = prefix.strip("/")

    # -- keys ------------------------------------------------------------------------

    def manifest_key(self, source: str, movie_id: str) -> str:
        return f"{self.prefix}/manifests/source={source}/movie={movie_id}.json"

    def _part_keys(
        self, source: str, movie_id: str, crawl_date: str, run_id: str, seq: int
    ) -> tuple[str, str]:
        name = f"source={source}/crawl_date={crawl_date}/movie={movie_id}-{run_id}-{seq:03d}"
        return f"{self.prefix}/parsed/{name}.parquet", f"{self.prefix}/raw/{name}.jsonl.gz"

    # -- manifests -------------------------------------------------------------------

    def manifest(self, source: str, movie_id: str) -> MovieManifest | None:
        key = self.manifest_key(source, movie_id)
        if not self.objects.exists(key):
            return None
        return self._load_manifest(key)

    def _load_manifest(self, key: str) -> MovieManifest:
        try:
            return MovieManifest.model_validate_json(self.objects.get_bytes(key))
        except ValidationError as error:
            raise StorageError(
                f"The crawl manifest {self.objects.uri(key)} is unreadable "
                f"({error.errors()[0]['msg']}). Restore it from a backup, or delete it to crawl "
                "that movie afresh."
            ) from error

    def manifests(self, source: str | None = None) -> list[MovieManifest]:
        prefix = f"{self.prefix}/manifests/" + (f"source={source}/" if source else "")
        keys = [key for key in self.objects.list(prefix) if key.endswith(".json")]
        return [self._load_manifest(key) for key in keys]

    def known_ids(self, manifest: MovieManifest) -> set[str]:
        known: set[str] = set()
        for part in manifest.parts:
            known.update(self._read_part(part, columns=["review_id"])["review_id"].to_pylist())
        return known

    # -- writing ---------------------------------------------------------------------

    def commit(
        self,
        base: MovieManifest,
        reviews: Sequence[Review],
        pages: Sequence[ReviewPage],
        *,
        allow_training: bool,
        run: RunInfo,
        seq: int,
        complete: bool,
        crawled_at: datetime,
    ) -> MovieManifest:
        """Store ``reviews`` (new ones) with their raw pages, then advance the manifest.

        If another crawl of the same movie committed since ``base`` was read, its reviews
        are not stored twice.
        """
        latest = self.manifest(base.source, base.movie_id) or base
        if [p.key for p in latest.parts] != [p.key for p in base.parts]:
            newer = MovieManifest(
                source=base.source,
                movie_id=base.movie_id,
                parts=[p for p in latest.parts if p not in base.parts],
            )
            taken = self.known_ids(newer)
            reviews = [review for review in reviews if review.review_id not in taken]
        manifest = latest.model_copy(deep=True)
        written: list[str] = []
        try:
            if reviews:
                crawl_date = crawled_at.strftime("%Y-%m-%d")
                key, raw_key = self._part_keys(
                    base.source, base.movie_id, crawl_date, run.run_id, seq
                )
                table = reviews_to_table(reviews, allow_training, crawled_at, run.run_id)
                self.objects.put_bytes(key, _parquet_bytes(table))
                written.append(key)
                self.objects.put_bytes(raw_key, _raw_bytes(pages))
                written.append(raw_key)
                manifest.parts.append(
                    PartInfo(
                        key=key,
                        raw_key=raw_key,
                        rows=len(reviews),
                        crawl_date=crawl_date,
                        run_id=run.run_id,
                    )
                )
                manifest.review_count += len(reviews)
                _advance_newest(manifest, reviews)
            manifest.title = base.title or manifest.title
            manifest.complete = complete
            manifest.allow_training = allow_training
            manifest.runs = [*[r for r in manifest.runs if r.run_id != run.run_id], run][
                -KEEP_RUNS:
            ]
            manifest.updated_at = crawled_at
            self.objects.put_bytes(
                self.manifest_key(base.source, base.movie_id),
                manifest.model_dump_json(indent=1).encode(),
            )
        except BaseException:
            for key in written:  # not referenced by any manifest: remove if we still can
                try:
                    self.objects.delete(key)
                except Exception as error:
                    log.warning("could not remove orphan %s: %s", key, error)
            raise
        return manifest

    # -- reading ---------------------------------------------------------------------

    def _read_part(self, part: PartInfo, columns: list[str] | None = None) -> pa.Table:
        data = self.objects.get_bytes(part.key)
        try:
            table = pq.read_table(pa.BufferReader(data), columns=columns)
        except (pa.ArrowException, OSError) as error:
            raise StorageError(
                f"{self.objects.uri(part.key)} is not readable Parquet ({error})."
            ) from error
        if table.num_rows != part.rows:
            raise StorageError(
                f"{self.objects.uri(part.key)} holds {table.num_rows} rows, its manifest says "
                f"{part.rows}; the store was changed outside cinesense."
            )
        return table

    def read(self, source: str | None = None, movie_id: str | None = None) -> pd.DataFrame:
        """Reviews of one movie, one source or everything, newest first, one row per review."""
        if movie_id is not None and source is not None:
            found = self.manifest(source, movie_id)
            manifests = [found] if found else []
        else:
            manifests = [
                m for m in self.manifests(source) if movie_id is None or m.movie_id == movie_id
            ]
        tables = [self._read_part(part) for m in manifests for part in m.parts]
        table = pa.concat_tables(tables) if tables else REVIEW_SCHEMA.empty_table()
        frame = table.to_pandas(types_mapper=PANDAS_TYPES.get)
        frame = frame.sort_values("crawled_at", kind="stable")
        frame = frame.drop_duplicates(subset=["source", "review_id"], keep="first")
        frame = frame.sort_values(
            ["created_at", "review_id"], ascending=False, na_position="last", kind="stable"
        )
        return frame.reset_index(drop=True)[REVIEW_COLUMNS]


def _parquet_bytes(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="zstd")
    return sink.getvalue().to_pybytes()


def _raw_bytes(pages: Sequence[ReviewPage]) -> bytes:
    lines = (
        json.dumps({"url": page.url, "payload": page.payload}, ensure_ascii=False) for page in pages
    )
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", compresslevel=6, mtime=0) as archive:
        archive.write("\n".join(lines).encode() + b"\n")
    return buffer.getvalue()


def read_raw(objects: ObjectStore, key: str) -> list[dict]:
    """The raw pages stored beside a part (for re-parsing)."""
    text = gzip.decompress(objects.get_bytes(key)).decode()
    return [json.loads(line) for line in text.splitlines() if line]


def _advance_newest(manifest: MovieManifest, reviews: Sequence[Review]) -> None:
    dated = [r for r in reviews if r.created_at is not None]
    if dated:
        newest = max(dated, key=lambda r: (r.created_at, r.review_id))
        current = manifest.newest_review_at
        if current is None or (newest.created_at is not None and newest.created_at > current):
            manifest.newest_review_id = newest.review_id
            manifest.newest_review_at = newest.created_at
    elif manifest.newest_review_id is None:
        manifest.newest_review_id = reviews[0].review_id
