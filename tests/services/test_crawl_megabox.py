"""Megabox over HTTP JSON against the fake site: listing, paging, mapping, incremental
crawls, dedupe across runs, and every failure mode leaving the store as it was."""

from __future__ import annotations

import gzip
import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from cinesense.crawl.fakesite import MEGABOX_MOVIE_LIST, MEGABOX_REVIEWS, FakeSite, fake_review
from cinesense.crawl.jobs import (
    crawl_movie,
    list_movies,
    now_showing,
    read_reviews,
    review_store,
    search_movies,
)
from cinesense.crawl.megabox import parse_review_page
from cinesense.crawl.records import REVIEW_COLUMNS, parse_kst
from cinesense.errors import CrawlerError
from tests.crawl_support import (
    assert_store_consistent,
    crawl_settings,
    stored_bytes,
)

MOVIE = "26000100"  # 37 reviews in the fake site, 3 of them masked by moderation
SHOWN = 34


@pytest.fixture
def site() -> Iterator[FakeSite]:
    with FakeSite() as fake:
        yield fake


def test_now_showing_pages_the_movie_list_and_search_finds_others(
    tmp_path: Path, site: FakeSite
) -> None:
    settings = crawl_settings(tmp_path, site.url, megabox={"movie_list_page_size": 2})
    movies = now_showing(settings, "megabox")
    assert [m.movie_id for m in movies] == ["26000100", "26000200", "26000300"]
    assert movies[1].title == "마지막 기차 & 별빛"  # HTML entity decoded
    assert movies[0].rank == 1 and movies[0].release_date == "20260715"
    assert len(site.api_hits(MEGABOX_MOVIE_LIST)) == 2  # 3 movies, 2 per page
    found = search_movies(settings, "겨울")
    assert [(m.movie_id, m.rank) for m in found] == [("25009900", None)]  # rank 999: unranked


def test_crawl_pages_every_review_and_maps_the_fields(tmp_path: Path, site: FakeSite) -> None:
    settings = crawl_settings(tmp_path, site.url)
    result = crawl_movie(settings, "megabox", MOVIE)
    assert (result.new, result.duplicate, result.pages) == (SHOWN, 0, 4)
    assert result.stopped == "end" and result.complete and result.allow_training
    assert result.dropped == {"masked": 3, "empty": 0}
    frame = read_reviews(settings, "megabox", MOVIE)
    assert list(frame.columns) == REVIEW_COLUMNS and len(frame) == SHOWN
    newest = frame.iloc[0]
    expected = fake_review(site.movies[("megabox", MOVIE)], 36)
    assert newest["review_id"] == str(9_100_000 + 36)
    assert newest["text"] == expected.text and newest["rating"] == expected.score
    assert newest["likes"] == expected.likes and newest["kind"] == "expectation"  # EXPE
    assert newest["created_at"] == expected.at.astimezone(UTC).replace(second=0)
    assert newest["movie_title"] == "푸른 항구의 여름" and bool(newest["allow_training"])
    assert set(frame["kind"]) == {"post_viewing", "expectation"}
    assert frame["rating"].between(1, 10).all()
    assert frame["created_at"].is_monotonic_decreasing
    assert_store_consistent(settings)


def test_author_ids_are_never_stored(tmp_path: Path, site: FakeSite) -> None:
    settings = crawl_settings(tmp_path, site.url)
    crawl_movie(settings, "megabox", MOVIE)
    for path, data in stored_bytes(settings).items():
        text = gzip.decompress(data).decode() if path.endswith(".gz") else data.decode("latin-1")
        assert "loginId" not in text and "fan0036**" not in text, path
        assert "mbNo" not in text and "profileImgPath" not in text


def test_incremental_crawl_stops_at_known_reviews_and_dedupes(
    tmp_path: Path, site: FakeSite
) -> None:
    settings = crawl_settings(tmp_path, site.url)
    crawl_movie(settings, "megabox", MOVIE)
    calls = len(site.api_hits(MEGABOX_REVIEWS))
    again = crawl_movie(settings, "megabox", MOVIE)
    assert (again.new, again.stopped, again.pages) == (0, "known", 1)
    assert len(site.api_hits(MEGABOX_REVIEWS)) == calls + 1

    site.add_reviews("megabox", MOVIE, 15)  # indices 37..51; 44 is masked
    later = crawl_movie(settings, "megabox", MOVIE)
    assert later.new == 14 and later.stopped == "known"
    assert later.pages == 3  # 10 new, then 5 new + 5 known, then a page of known ones
    frame = read_reviews(settings, "megabox", MOVIE)
    assert len(frame) == SHOWN + 14 and frame["review_id"].is_unique
    manifest = review_store(settings).manifest("megabox", MOVIE)
    assert manifest is not None and manifest.newest_review_id == str(9_100_000 + 51)
    assert len(manifest.parts) == 2 and [r.stopped for r in manifest.runs] == [
        "end",
        "known",
        "known",
    ]
    assert_store_consistent(settings)


def test_max_reviews_then_the_next_run_fills_the_gap(tmp_path: Path, site: FakeSite) -> None:
    settings = crawl_settings(tmp_path, site.url)
    first = crawl_movie(settings, "megabox", MOVIE, max_reviews=12)
    assert (first.new, first.stopped, first.complete) == (12, "max_reviews", False)
    rest = crawl_movie(settings, "megabox", MOVIE)  # skips known pages, does not stop there
    assert (rest.new, rest.stopped, rest.complete) == (SHOWN - 12, "end", True)
    assert rest.duplicate >= 12
    assert len(read_reviews(settings, "megabox", MOVIE)) == SHOWN
    assert_store_consistent(settings)


def test_commits_in_batches(tmp_path: Path, site: FakeSite) -> None:
    settings = crawl_settings(tmp_path, site.url, commit_every=10)
    crawl_movie(settings, "megabox", MOVIE)
    manifest = review_store(settings).manifest("megabox", MOVIE)
    assert manifest is not None and [p.rows for p in manifest.parts] == [18, 10, 6]
    assert manifest.review_count == SHOWN and manifest.complete
    assert_store_consistent(settings)


def _crawl_then_break(tmp_path: Path, site: FakeSite, **crawl: object) -> tuple[object, dict]:
    settings = crawl_settings(tmp_path, site.url, **crawl)
    crawl_movie(settings, "megabox", MOVIE)
    site.add_reviews("megabox", MOVIE, 25)
    return settings, stored_bytes(settings)


@pytest.mark.parametrize(
    ("fault", "kind"),
    [
        ({"schema_change": True}, "schema"),
        ({"block": True}, "blocked"),
        ({"block_after": 1}, "blocked"),  # the second page is a block page
        ({"robots_disallow": True}, "robots"),
        ({"statuses": [503] * 10}, "server"),
        ({"statuses": [429] * 10, "retry_after": "0"}, "rate_limited"),
        ({"block": True, "block_status": 200}, "blocked"),  # HTML with 200 where JSON was due
    ],
)
def test_failures_store_nothing_and_keep_the_store_intact(
    tmp_path: Path, site: FakeSite, fault: dict[str, object], kind: str
) -> None:
    settings, before = _crawl_then_break(tmp_path, site)
    site.faults.block_after = None
    for name, value in fault.items():
        if name == "block_after":
            value = len(site.api_hits()) + int(value)  # type: ignore[call-overload]
        setattr(site.faults, name, value)
    with pytest.raises(CrawlerError) as caught:
        crawl_movie(settings, "megabox", MOVIE)
    assert caught.value.kind == kind and caught.value.source == "megabox"
    assert site.url in caught.value.url
    assert stored_bytes(settings) == before  # nothing written, manifest not advanced
    assert_store_consistent(settings)


def test_failure_on_a_first_crawl_leaves_no_manifest(tmp_path: Path, site: FakeSite) -> None:
    settings = crawl_settings(tmp_path, site.url)
    site.faults.schema_change = True
    with pytest.raises(CrawlerError, match="no longer has the expected shape"):
        crawl_movie(settings, "megabox", MOVIE)
    assert review_store(settings).manifest("megabox", MOVIE) is None
    assert list_movies(settings).empty and read_reviews(settings).empty


def test_training_flag_follows_robots_content_signal_unless_set(
    tmp_path: Path, site: FakeSite, caplog: pytest.LogCaptureFixture
) -> None:
    site.faults.robots_extra = "Content-Signal: search=yes, ai-train=no"
    settings = crawl_settings(tmp_path, site.url)
    assert not crawl_movie(settings, "megabox", MOVIE, max_reviews=5).allow_training
    explicit = crawl_settings(tmp_path / "b", site.url, megabox={"allow_training": True})
    with caplog.at_level(logging.WARNING):
        assert crawl_movie(explicit, "megabox", MOVIE, max_reviews=5).allow_training
    assert "ai-train=no" in caplog.text
    assert read_reviews(settings, training_only=True).empty
    assert len(read_reviews(explicit, training_only=True)) == 5


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda s: crawl_movie(s, "megabox", "../etc"), "invalid movie id"),
        (lambda s: crawl_movie(s, "naver", "1"), "unknown source 'naver'"),
        (lambda s: crawl_movie(s, "megabox", MOVIE, max_reviews=0), "at least 1"),
    ],
)
def test_bad_input_is_a_clear_error(tmp_path: Path, site: FakeSite, call, message: str) -> None:
    with pytest.raises(CrawlerError, match=message):
        call(crawl_settings(tmp_path, site.url))
    assert site.hits == []


def test_disabled_source_is_refused(tmp_path: Path, site: FakeSite) -> None:
    settings = crawl_settings(tmp_path, site.url, megabox={"enabled": False})
    with pytest.raises(CrawlerError, match="CINESENSE_CRAWL__MEGABOX__ENABLED=true"):
        crawl_movie(settings, "megabox", MOVIE)


def test_parse_review_page_edge_cases() -> None:
    item = {
        "onelnEvalNo": 7,
        "onelnEvalCn": "  좋았어요&amp;  <br> 추천!!!!!! ",
        "spointScore": 0,
        "onelnEvalDivCd": "XXXX",
        "fullLstUptDt": "",
        "fstRegDt": "36 분전",
        "loginId": "abc**",
    }
    masked = {"onelnEvalNo": 8, "maskAt": "Y", "onelnEvalCn": "가려짐"}
    page = parse_review_page({"list": [item, masked]}, "u", "1", "제목")
    (review,) = page.reviews
    assert review.text == "좋았어요& 추천!!!" and review.rating is None and review.kind is None
    assert review.created_at is None and review.movie_title == "제목"
    assert page.dropped == {"masked": 1, "empty": 0}
    assert "loginId" not in page.payload["list"][0]
    with pytest.raises(CrawlerError, match="onelnEvalNo"):
        parse_review_page({"list": [{"onelnEvalCn": "x"}]}, "u", "1", "")
    assert parse_kst("2026.07.20 14:05") == datetime(2026, 7, 20, 5, 5, tzinfo=UTC)
    assert parse_kst("2026-05-10 21:14:03") == datetime(2026, 5, 10, 12, 14, 3, tzinfo=UTC)
    assert parse_kst("2026.13.40") is None and parse_kst(None) is None


def test_a_movie_without_reviews_leaves_no_trace(tmp_path: Path, site: FakeSite) -> None:
    settings = crawl_settings(tmp_path, site.url)
    for movie_id in ("26000300", "99999999"):  # no reviews yet; an id the site does not know
        result = crawl_movie(settings, "megabox", movie_id)
        assert (result.new, result.pages, result.stopped) == (0, 0, "end")
    assert list_movies(settings).empty and stored_bytes(settings) == {}
