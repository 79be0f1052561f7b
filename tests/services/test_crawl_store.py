"""The review store: layout, raw payloads, manifests as commit points, interrupted writes
(an exception, Ctrl-C, a killed process) and S3 against a real S3-compatible server."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from cinesense.config import Settings, StorageSettings
from cinesense.crawl.fakesite import FakeMovie, FakeSite
from cinesense.crawl.jobs import (
    CrawlProgress,
    as_corpus,
    crawl_movie,
    list_movies,
    read_reviews,
    review_store,
)
from cinesense.crawl.records import Review
from cinesense.crawl.store import MovieManifest, RunInfo, read_raw
from cinesense.data.corpus import REVIEW_COLUMNS as CORPUS_COLUMNS
from cinesense.errors import StorageError
from cinesense.storage import LocalStore, ObjectStore
from tests.crawl_support import (
    assert_store_consistent,
    crawl_settings,
    stored_bytes,
)
from tests.servers import moto_server

MOVIE = "26000100"


@pytest.fixture
def site() -> Iterator[FakeSite]:
    with FakeSite() as fake:
        yield fake


class FailingStore:
    """A local store whose put of a key containing ``fail_on`` raises (a crash mid-commit)."""

    def __init__(self, inner: ObjectStore, fail_on: str, error: BaseException) -> None:
        self.inner = inner
        self.fail_on = fail_on
        self.error = error

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)

    def put_bytes(self, key: str, data: bytes) -> None:
        if self.fail_on in key:
            raise self.error
        self.inner.put_bytes(key, data)


def test_layout_raw_payloads_and_manifest(tmp_path: Path, site: FakeSite) -> None:
    settings = crawl_settings(tmp_path, site.url)
    result = crawl_movie(settings, "megabox", MOVIE)
    store = review_store(settings)
    day = datetime.now(UTC).strftime("%Y-%m-%d")
    keys = LocalStore(tmp_path / "storage").list()
    stem = f"source=megabox/crawl_date={day}/movie={MOVIE}-{result.run_id}-000"
    assert keys == [
        f"reviews/manifests/source=megabox/movie={MOVIE}.json",
        f"reviews/parsed/{stem}.parquet",
        f"reviews/raw/{stem}.jsonl.gz",
    ]
    pages = read_raw(store.objects, f"reviews/raw/{stem}.jsonl.gz")
    assert len(pages) == 4 and pages[0]["url"].endswith("selectOneLnList.do")
    assert sum(len(page["payload"]["list"]) for page in pages) == 37  # masked ones kept raw
    manifest = store.manifest("megabox", MOVIE)
    assert manifest is not None and manifest.review_count == 34 and manifest.complete
    assert manifest.newest_review_at is not None and manifest.title == "푸른 항구의 여름"
    movies = list_movies(settings)
    assert movies[["source", "movie_id", "reviews", "complete"]].values.tolist() == [
        ["megabox", MOVIE, 34, True]
    ]


def test_manifest_write_failure_keeps_old_state_and_removes_the_part(
    tmp_path: Path, site: FakeSite
) -> None:
    settings = crawl_settings(tmp_path, site.url)
    crawl_movie(settings, "megabox", MOVIE, max_reviews=10)
    before = stored_bytes(settings)
    failing = FailingStore(LocalStore(tmp_path / "storage"), "/manifests/", OSError("disk full"))
    with pytest.raises(OSError, match="disk full"):
        crawl_movie(settings, "megabox", MOVIE, store=failing)
    assert stored_bytes(settings) == before  # the new part was removed, manifest unchanged
    assert_store_consistent(settings)
    crawl_movie(settings, "megabox", MOVIE)  # a healthy run completes it, once
    assert len(read_reviews(settings)) == 34
    assert_store_consistent(settings)


def test_interrupted_object_write_leaves_no_half_file(
    tmp_path: Path, site: FakeSite, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = crawl_settings(tmp_path, site.url)
    real_replace = os.replace

    def crash_on_parquet(source: str, target: str | os.PathLike[str]) -> None:
        if str(target).endswith(".parquet"):
            raise KeyboardInterrupt  # as if the process were stopped mid-write
        real_replace(source, target)

    monkeypatch.setattr(os, "replace", crash_on_parquet)
    with pytest.raises(KeyboardInterrupt):
        crawl_movie(settings, "megabox", MOVIE)
    monkeypatch.undo()
    assert not [p for p in (tmp_path / "storage").rglob("*") if p.is_file()]
    assert review_store(settings).manifest("megabox", MOVIE) is None


def test_ctrl_c_during_a_crawl_stores_nothing(tmp_path: Path, site: FakeSite) -> None:
    settings = crawl_settings(tmp_path, site.url)

    def interrupt(progress: CrawlProgress) -> None:
        if progress.pages == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        crawl_movie(settings, "megabox", MOVIE, progress=interrupt)
    assert stored_bytes(settings) == {}


def test_killed_crawl_leaves_a_consistent_store(tmp_path: Path) -> None:
    movies = [FakeMovie("megabox", MOVIE, "긴 영화", 400, first_review_no=1_000)]
    with FakeSite(movies=movies) as fake:
        fake.faults.slow_s = 0.03  # about 1.5 s in all: time to kill it midway
        env = {
            **os.environ,
            "CINESENSE_HOME": str(tmp_path),
            "CINESENSE_CRAWL__MEGABOX__BASE_URL": fake.url,
            "CINESENSE_CRAWL__RATE_LIMIT_PER_S": "100",
            "CINESENSE_CRAWL__COMMIT_EVERY": "30",
        }
        command = [sys.executable, "-m", "cinesense", "crawl", "movie", "--source", "megabox"]
        process = subprocess.Popen(
            [*command, "--movie-id", MOVIE, "--no-progress"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        settings = crawl_settings(tmp_path, fake.url)
        manifest_file = tmp_path / f"storage/reviews/manifests/source=megabox/movie={MOVIE}.json"
        deadline = time.monotonic() + 60
        while not manifest_file.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.05)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
        manifest = review_store(settings).manifest("megabox", MOVIE)
        assert manifest is not None and 0 < manifest.review_count < 370
        assert not manifest.complete
        stored = read_reviews(settings, "megabox", MOVIE)
        assert len(stored) == manifest.review_count and stored["review_id"].is_unique
        # Visible objects: only what manifests reference, plus at most one orphan part
        # that the kill left between its write and the manifest write.
        parts = {p.key for p in manifest.parts}
        listed = [k for k in LocalStore(tmp_path / "storage").list() if "/parsed/" in k]
        assert len(set(listed) - parts) <= 1
        fake.faults.slow_s = 0.0
        finished = crawl_movie(settings, "megabox", MOVIE)
        assert finished.complete
    assert len(read_reviews(settings, "megabox", MOVIE)) == 400 - 31  # 31 masked of 400


def test_a_concurrent_commit_is_not_duplicated(tmp_path: Path) -> None:
    store = review_store(Settings(home=tmp_path))
    base = MovieManifest(source="megabox", movie_id="1")
    now = datetime.now(UTC)

    def run(run_id: str) -> RunInfo:
        return RunInfo(
            run_id=run_id,
            started_at=now,
            finished_at=now,
            new=0,
            duplicate=0,
            pages=0,
            requests=0,
            stopped="end",
        )

    reviews = [Review("megabox", str(i), "1", "t", f"리뷰 {i}") for i in range(5)]
    store.commit(base, reviews[:3], [], allow_training=True, run=run("a"), seq=0,
                 complete=False, crawled_at=now)  # fmt: skip
    merged = store.commit(base, reviews, [], allow_training=True, run=run("b"), seq=0,
                          complete=True, crawled_at=now)  # fmt: skip
    assert merged.review_count == 5 and [p.rows for p in merged.parts] == [3, 2]
    assert sorted(store.read()["review_id"]) == ["0", "1", "2", "3", "4"]


def test_corrupt_manifest_is_a_clear_error(tmp_path: Path, site: FakeSite) -> None:
    settings = crawl_settings(tmp_path, site.url)
    crawl_movie(settings, "megabox", MOVIE, max_reviews=3)
    key = f"reviews/manifests/source=megabox/movie={MOVIE}.json"
    LocalStore(tmp_path / "storage").put_bytes(key, b"{not json")
    with pytest.raises(StorageError, match=r"unreadable.*delete it to crawl that movie afresh"):
        read_reviews(settings)


def test_as_corpus_matches_the_dataset_readers(tmp_path: Path, site: FakeSite) -> None:
    settings = crawl_settings(tmp_path, site.url)
    crawl_movie(settings, "megabox", MOVIE)
    corpus = as_corpus(read_reviews(settings, training_only=True))
    assert list(corpus.columns) == CORPUS_COLUMNS and len(corpus) == 34
    assert corpus["date"].str.match(r"^2026-07-\d\d$").all()


def test_reviews_go_to_an_s3_compatible_store(tmp_path: Path, site: FakeSite) -> None:
    with moto_server() as endpoint:
        settings = crawl_settings(tmp_path, site.url).model_copy(
            update={
                "storage": StorageSettings(
                    backend="s3",
                    endpoint_url=endpoint,
                    bucket="reviews-test",
                    access_key_id="test-key",  # type: ignore[arg-type]
                    secret_access_key="test-secret",  # type: ignore[arg-type]
                    timeout_s=5,
                )
            }
        )
        first = crawl_movie(settings, "megabox", MOVIE)
        second = crawl_movie(settings, "megabox", MOVIE)
        assert (first.new, second.new, second.stopped) == (34, 0, "known")
        assert len(read_reviews(settings, "megabox")) == 34
        assert list_movies(settings)["reviews"].tolist() == [34]
    assert not (tmp_path / "storage").exists()
