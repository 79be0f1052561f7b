"""The pipeline steps the CLI and the DAGs share: overrides, datasets with crawled
reviews, the retraining threshold, crawl targets and summaries, messages, Slack."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest
from pydantic import ValidationError

from cinesense.config import DataSettings, Settings
from cinesense.crawl.fakesite import FakeSite
from cinesense.crawl.jobs import read_reviews
from cinesense.data.corpus import sample_corpus_path
from cinesense.data.dataset import load_dataset
from cinesense.errors import CinesenseError, CrawlerError
from cinesense.notify import NotificationError, post_to_slack
from cinesense.pipelines.common import run_directory, with_overrides
from cinesense.pipelines.crawl import crawl_target, summarize_crawl
from cinesense.pipelines.dataset import build_training_dataset, corpus_info, default_corpus_files
from cinesense.pipelines.train import (
    TRAINING_WATERMARK,
    new_labelled_reviews,
    should_train,
    training_message,
)
from cinesense.storage import open_store
from tests.crawl_support import crawl_settings

MOVIE, SHOWN = "26000100", 34


@pytest.fixture
def site() -> Iterator[FakeSite]:
    with FakeSite() as fake:
        yield fake


def test_overrides_replace_what_is_given_and_are_validated(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path)
    changed = with_overrides(settings, "train", epochs=2, learning_rate=None, base_model="x")
    assert changed.train.epochs == 2.0 and changed.train.base_model == "x"
    assert changed.train.learning_rate == settings.train.learning_rate
    assert with_overrides(settings, "train", epochs=None) is settings
    assert with_overrides(settings, "pretrain", preset="tiny").pretrain.preset == "tiny"
    with pytest.raises(ValidationError):
        with_overrides(settings, "train", epochs=-1)
    with pytest.raises(ValueError, match="not a train setting: epoch"):
        with_overrides(settings, "train", epoch=2)


def test_run_directories_are_safe_names_under_the_home(tmp_path: Path) -> None:
    path = run_directory(Settings(home=tmp_path), "train_model", "manual__2026-11-22T03:10+00:00")
    assert path == tmp_path / "runs/train_model/manual__2026-11-22T03_10_00_00"


def test_default_corpus_is_the_configured_files_else_the_download_else_the_sample(
    tmp_path: Path,
) -> None:
    settings = Settings(home=tmp_path)
    assert default_corpus_files(settings) == [sample_corpus_path()]
    downloaded = tmp_path / "corpus/naver_movie_reviews.tsv.gz"
    downloaded.parent.mkdir(parents=True)
    downloaded.write_bytes(b"")
    assert default_corpus_files(settings) == [downloaded]
    chosen = Settings(home=tmp_path, data=DataSettings(corpus_files=[Path("a.tsv")]))
    assert default_corpus_files(chosen) == [Path("a.tsv")]


def test_a_dataset_takes_crawled_reviews_that_may_train_and_says_so(
    tmp_path: Path, site: FakeSite
) -> None:
    settings = crawl_settings(tmp_path, site.url)
    crawl_target(settings, "megabox", MOVIE)
    directory = tmp_path / "dataset"
    dataset = build_training_dataset(settings, directory, include_crawled=True)
    info = corpus_info(directory)
    assert info["crawled_reviews"] == SHOWN and info["crawled_until"]
    every = {s for split in dataset.splits.values() for s in split["source"]}
    assert every == {"naver", "megabox"}
    assert load_dataset(directory).manifest.fingerprint == dataset.manifest.fingerprint
    without = build_training_dataset(settings, tmp_path / "plain", include_crawled=False)
    assert corpus_info(tmp_path / "plain")["crawled_reviews"] == 0
    assert without.manifest.fingerprint != dataset.manifest.fingerprint


def test_reviews_started_runs_wait_for_enough_new_labelled_reviews(
    tmp_path: Path, site: FakeSite
) -> None:
    settings = crawl_settings(tmp_path, site.url)
    assert should_train(settings, "scheduled", 10**6)[0]  # weekly and manual runs always train
    assert should_train(settings, "manual", 10**6)[0]
    crawl_target(settings, "megabox", MOVIE)
    stored = read_reviews(settings)
    labelled = int(((stored["rating"] <= 4) | (stored["rating"] >= 9)).sum())
    assert 0 < labelled < SHOWN  # neutral ratings (5–8) do not count
    assert new_labelled_reviews(settings) == {"new_labelled": labelled, "since": None}
    go, reason = should_train(settings, "asset_triggered", labelled + 1)
    assert not go and f"only {labelled} new labelled reviews" in reason
    assert should_train(settings, "asset_triggered", labelled)[0]

    until = stored["crawled_at"].max().isoformat()
    open_store(settings).put_bytes(
        TRAINING_WATERMARK, json.dumps({"crawled_until": until}).encode()
    )
    assert new_labelled_reviews(settings)["new_labelled"] == 0
    site.add_reviews("megabox", MOVIE, 30)
    crawl_target(settings, "megabox", MOVIE)
    assert 0 < new_labelled_reviews(settings)["new_labelled"] <= 30


def test_a_source_that_blocks_is_not_asked_again_in_the_same_run(
    tmp_path: Path, site: FakeSite
) -> None:
    settings = crawl_settings(tmp_path, site.url)
    site.faults.block = True
    with pytest.raises(CrawlerError) as blocked:
        crawl_target(settings, "megabox", MOVIE, stop_scope="run-1")
    assert blocked.value.kind == "blocked"
    site.faults.block = False
    asked = len(site.hits)
    with pytest.raises(CrawlerError) as stopped:
        crawl_target(settings, "megabox", "26000200", stop_scope="run-1")
    assert stopped.value.kind == "stopped" and "not tried" in str(stopped.value)
    assert len(site.hits) == asked  # not a single request
    assert crawl_target(settings, "megabox", MOVIE, stop_scope="run-2")["new"] == SHOWN


def test_crawl_summary_counts_per_source_and_fails_only_when_everything_failed() -> None:
    targets = [
        {"source": "megabox", "movie_id": "1", "title": "a"},
        {"source": "megabox", "movie_id": "2", "title": "b"},
        {"source": "cgv", "movie_id": "3", "title": "c"},
    ]
    results = [
        {"source": "megabox", "movie_id": "1", "new": 5, "duplicate": 2},
        {"source": "cgv", "movie_id": "3", "new": 0, "duplicate": 7},
    ]
    summary = summarize_crawl(targets, results, {})
    assert summary["new"] == 5 and summary["duplicate"] == 9 and summary["failed"] == 1
    assert summary["sources"]["megabox"]["failed_movies"] == ["2"]
    assert summary["sources"]["cgv"] == {
        "movies": 1,
        "new": 0,
        "duplicate": 7,
        "failed": 0,
        "failed_movies": [],
        "listing_failed": None,
    }
    partial = summarize_crawl(targets[:2], results[:1], {"cgv": "cgv: blocked"})
    assert partial["failed"] == 2 and partial["sources"]["cgv"]["listing_failed"]
    empty = summarize_crawl([], [], {})
    assert empty["new"] == 0 and empty["failed"] == 0
    with pytest.raises(CinesenseError, match="every crawl failed"):
        summarize_crawl(targets, [], {})
    with pytest.raises(CinesenseError, match="every crawl failed"):
        summarize_crawl([], [], {"megabox": "blocked", "cgv": "blocked"})


def test_the_training_message_says_whether_and_why() -> None:
    registered = {
        "test_accuracy": "0.8712",
        "baseline_accuracy": "0.8400",
        "served_format": "int8",
        "base_model": "self-built",
        "run_id": "abc",
    }
    won = training_message(
        {
            "version": "3",
            "promoted": True,
            "reason": "accuracy 0.87 beats v2",
            "champion_version": "2",
        },
        registered,
        "scheduled__1",
    )
    assert won.startswith("cinesense: version 3 is the new champion")
    assert "why: accuracy 0.87 beats v2" in won and "served as int8" in won
    lost = training_message(
        {"version": "4", "promoted": False, "reason": "gain too small", "champion_version": "3"},
        registered,
        "manual__2",
    )
    assert "version 4 was not promoted (champion stays v3)" in lost and "gain too small" in lost


class _Webhook(BaseHTTPRequestHandler):
    status = 200
    received: ClassVar[list[dict]] = []

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        type(self).received.append(json.loads(body))
        self.send_response(self.status)
        self.send_header("Content-Length", "7")
        self.end_headers()
        self.wfile.write(b"no_team" if self.status >= 400 else b"ok     ")


@pytest.fixture
def webhook() -> Iterator[tuple[str, type[_Webhook]]]:
    handler = type("Handler", (_Webhook,), {"received": [], "status": 200})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/services/T/B/sekret", handler
    finally:
        server.shutdown()
        server.server_close()


def test_slack_gets_the_text_and_errors_never_show_the_webhook(
    webhook: tuple[str, type[_Webhook]],
) -> None:
    url, handler = webhook
    post_to_slack(url, "hello")
    assert handler.received == [{"text": "hello"}]
    handler.status = 404
    with pytest.raises(NotificationError) as refused:
        post_to_slack(url, "hello")
    assert "HTTP 404" in str(refused.value) and "sekret" not in str(refused.value)
    with pytest.raises(NotificationError) as unreachable:
        post_to_slack("http://127.0.0.1:9/services/T/B/sekret", "hello", timeout_s=2)
    assert "sekret" not in str(unreachable.value) and unreachable.value.__cause__ is None
    with pytest.raises(NotificationError, match="not an http"):
        post_to_slack("sekret", "hello")


def test_chosen_movies_replace_the_now_showing_lists(tmp_path: Path) -> None:
    from cinesense.pipelines.crawl import list_crawl_targets

    chosen = [
        {"source": "megabox", "movie_id": "23001", "title": "푸른 항구의 여름"},
        {"source": "cgv", "movie_id": "9"},
    ]
    listed = list_crawl_targets(Settings(home=tmp_path), ["megabox"], 5, only=chosen)
    assert listed == {
        "movies": [{"source": "megabox", "movie_id": "23001", "title": "푸른 항구의 여름"}],
        "failures": {},
    }
