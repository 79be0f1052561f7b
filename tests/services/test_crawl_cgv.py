"""CGV through real headless Chromium (Debian's chromium, driven by Playwright) against the
fake site: scrolling capture of the review API, blocks, drift; and the Megabox canary."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest

from cinesense.config import CrawlSettings
from cinesense.crawl.browser import BrowserSession
from cinesense.crawl.cgv import egg_value, parse_review_response
from cinesense.crawl.fakesite import CGV_PAGE, CGV_REVIEWS, FakeSite, fake_review
from cinesense.crawl.jobs import (
    crawl_movie,
    crawl_sources,
    megabox_canary,
    now_showing,
    read_reviews,
    review_store,
)
from cinesense.errors import CrawlerError
from tests.crawl_support import (
    assert_store_consistent,
    crawl_settings,
    stored_bytes,
)

MOVIE = "30000100"  # 23 reviews; the page loads 5 per review call


@pytest.fixture
def site() -> Iterator[FakeSite]:
    with FakeSite() as fake:
        yield fake


@pytest.fixture(scope="module")
def chromium() -> None:
    """Skip (with the reason) only if Chromium truly cannot start here."""
    try:
        with BrowserSession("cgv", CrawlSettings()):
            pass
    except CrawlerError as error:
        pytest.skip(f"headless Chromium cannot start on this machine: {error}")


pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("chromium")]


def test_now_showing_from_the_booking_chart(tmp_path: Path, site: FakeSite) -> None:
    movies = now_showing(crawl_settings(tmp_path, site.url), "cgv")
    assert [(m.movie_id, m.title, m.rank) for m in movies] == [
        ("30000100", "하늘을 나는 고양이", 1),
        ("30000200", "서울의 밤 산책", 2),
    ]
    assert movies[0].booking_rate == 30.0


def test_crawl_scrolls_captures_and_maps_reviews(tmp_path: Path, site: FakeSite) -> None:
    settings = crawl_settings(tmp_path, site.url, rate_limit_per_s=20.0)
    result = crawl_movie(settings, "cgv", MOVIE, title="하늘을 나는 고양이")
    assert (result.new, result.stopped, result.complete) == (23, "end", True)
    assert result.pages == 5 and not result.allow_training  # ai-train=no: off by default
    calls = site.api_hits(CGV_REVIEWS)
    assert [h.path.split("startRow=")[1].split("&")[0] for h in calls] == [
        "0",
        "5",
        "10",
        "15",
        "20",
        "23",
    ]
    # Each review call is held until its turn under the rate limit (20/s); arrival times
    # at a busy server jitter by some milliseconds.
    gaps = [b.at - a.at for a, b in itertools.pairwise(calls)]
    assert calls[-1].at - calls[0].at >= 0.95 * 5 * 0.05 and min(gaps) >= 0.03, gaps
    assert all("HeadlessChrome" in h.user_agent and "cinesense" in h.user_agent for h in calls)

    frame = read_reviews(settings, "cgv", MOVIE)
    newest = frame.iloc[0]
    expected = fake_review(site.movies[("cgv", MOVIE)], 22)
    assert newest["review_id"] == f"R{MOVIE}000022" and newest["text"] == expected.text
    assert newest["egg_raw"] == ("2" if expected.score >= 6 else "1")
    assert frame["label"].isna().all()  # egScore's meaning is unconfirmed: no label by default
    assert not frame["allow_training"].any() and frame["movie_title"].eq("하늘을 나는 고양이").all()
    text = b"".join(stored_bytes(settings).values())
    assert b"snsNcnm" not in text

    again = crawl_movie(settings, "cgv", MOVIE)
    assert (again.new, again.stopped, again.pages) == (0, "known", 2)
    assert_store_consistent(settings)


def test_egg_labels_when_mapped_and_training_when_allowed(tmp_path: Path, site: FakeSite) -> None:
    settings = crawl_settings(
        tmp_path,
        site.url,
        cgv={"egg_labels": {"2": "positive", "1": "negative"}, "allow_training": True},
    )
    result = crawl_movie(settings, "cgv", "30000200")
    assert result.new == 8 and result.allow_training
    frame = read_reviews(settings, "cgv")
    assert (frame["label"] == (frame["egg_raw"] == "2").astype(int)).all()


@pytest.mark.parametrize("fault", [{"block_after": 2}, {"block": True}, {"schema_change": True}])
def test_block_or_drift_stops_cleanly_and_stores_nothing(
    tmp_path: Path, site: FakeSite, fault: dict[str, object]
) -> None:
    settings = crawl_settings(tmp_path, site.url)
    for name, value in fault.items():
        setattr(site.faults, name, value)
    with pytest.raises(CrawlerError) as caught:
        crawl_movie(settings, "cgv", MOVIE)
    expected = "schema" if "schema_change" in fault else "blocked"
    assert caught.value.kind == expected and caught.value.source == "cgv"
    assert stored_bytes(settings) == {}


def test_robots_disallow_means_no_page_is_opened(tmp_path: Path, site: FakeSite) -> None:
    site.faults.robots_disallow = True
    with pytest.raises(CrawlerError, match=r"robots\.txt disallows"):
        crawl_movie(crawl_settings(tmp_path, site.url), "cgv", MOVIE)
    assert not [h for h in site.hits if h.path.startswith(CGV_PAGE)]


def test_a_blocked_source_does_not_stop_the_others(tmp_path: Path) -> None:
    with FakeSite() as megabox, FakeSite() as cgv:
        cgv.faults.block = True
        settings = crawl_settings(tmp_path, megabox.url, cgv={"base_url": cgv.url})
        results = crawl_sources(settings, max_reviews=5, max_movies=2)
    assert results["megabox"].ok and [r.new for r in results["megabox"].movies] == [5, 5]
    assert not results["cgv"].ok and "blocked" in (results["cgv"].stopped_early or "")
    assert review_store(settings).manifests("cgv") == []


def test_megabox_canary_agrees_then_reports_markup_drift(tmp_path: Path, site: FakeSite) -> None:
    settings = crawl_settings(tmp_path, site.url)
    report = megabox_canary(settings, "26000100")
    assert report.ok and report.json_reviews == report.html_reviews == 9
    site.faults.html_change = True
    drifted = megabox_canary(settings, "26000100")
    assert not drifted.ok and "markup changed" in drifted.problems[0]


def test_missing_chromium_is_a_clear_error(tmp_path: Path, site: FakeSite) -> None:
    settings = crawl_settings(tmp_path, site.url)
    settings.crawl.chromium_path = str(tmp_path / "no-chromium")
    with pytest.raises(CrawlerError, match="apt-get install -y chromium") as caught:
        crawl_movie(settings, "cgv", MOVIE)
    assert caught.value.kind == "browser" and site.hits == []


def test_review_response_parsing() -> None:
    payload = {
        "statusCode": 0,
        "data": {"list": [{"rviewNo": 5, "rviewCont": " 좋아요 ", "egScore": "egg:2점"}]},
    }
    page = parse_review_response(payload, "u", "1", "t", {"2": "positive"})
    assert page.reviews[0].label == 1 and page.reviews[0].egg_raw == "2"
    assert egg_value("87.5%") == "87.5" and egg_value(None) is None
    with pytest.raises(CrawlerError, match="statusCode 401"):
        parse_review_response({"statusCode": 401, "statusMessage": "x"}, "u", "1", "t", {})
