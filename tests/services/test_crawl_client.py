"""The crawler core against the fake site on loopback: robots.txt, rate limit, retries,
backoff, circuit breaker, block pages and wrong content types."""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from cinesense.crawl.client import PoliteClient
from cinesense.crawl.fakesite import MEGABOX_REVIEWS, FakeSite
from cinesense.crawl.politeness import backoff_s, content_signals, retry_after_s
from cinesense.errors import CrawlerError
from tests.crawl_support import crawl_settings

BODY = {"movieNo": "26000100", "currentPage": "1", "recordCountPerPage": "10"}


@pytest.fixture
def site() -> Iterator[FakeSite]:
    with FakeSite() as fake:
        yield fake


def client(tmp_path: Path, fake: FakeSite, **crawl: object) -> PoliteClient:
    settings = crawl_settings(tmp_path, fake.url, **crawl)
    return PoliteClient("megabox", settings.crawl, rng=random.Random(0))


def test_json_request_sends_honest_agent_and_reads_robots_once(
    tmp_path: Path, site: FakeSite
) -> None:
    with client(tmp_path, site, user_agent="cinesense-test/1.0 (tests)") as http:
        for _ in range(3):
            payload = http.post_json(site.url + MEGABOX_REVIEWS, BODY)
    assert len(payload["list"]) == 10
    assert [h.path for h in site.hits].count("/robots.txt") == 1
    assert {h.user_agent for h in site.hits} == {"cinesense-test/1.0 (tests)"}
    assert http.requests == 4  # robots.txt counts against the rate limit too


def test_rate_limit_spaces_requests_to_a_host(tmp_path: Path, site: FakeSite) -> None:
    with client(tmp_path, site, rate_limit_per_s=20.0) as http:
        for _ in range(6):
            http.post_json(site.url + MEGABOX_REVIEWS, BODY)
    times = [h.at for h in site.hits]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    # 1/20 s apart when sent; arrival times at a busy server jitter by some milliseconds.
    assert times[-1] - times[0] >= 0.95 * 6 * 0.05 and min(gaps) >= 0.03, gaps


def test_robots_disallow_refuses_before_any_request(tmp_path: Path, site: FakeSite) -> None:
    site.faults.robots_disallow = True
    with client(tmp_path, site) as http, pytest.raises(CrawlerError) as caught:
        http.post_json(site.url + MEGABOX_REVIEWS, BODY)
    assert caught.value.kind == "robots" and caught.value.source == "megabox"
    assert "robots.txt disallows" in str(caught.value) and MEGABOX_REVIEWS in str(caught.value)
    assert [h.path for h in site.hits] == ["/robots.txt"]


def test_missing_robots_allows_and_failing_robots_disallows(tmp_path: Path, site: FakeSite) -> None:
    site.faults.robots_status = 404
    with client(tmp_path, site) as http:
        assert http.post_json(site.url + MEGABOX_REVIEWS, BODY)["list"]
    site.faults.robots_status = 503
    with client(tmp_path, site) as http, pytest.raises(CrawlerError) as caught:
        http.post_json(site.url + MEGABOX_REVIEWS, BODY)
    assert caught.value.kind == "robots" and "RFC 9309" in str(caught.value)


def test_429_burst_is_retried_then_succeeds(tmp_path: Path, site: FakeSite) -> None:
    site.faults.statuses = [429, 429, 503]
    site.faults.retry_after = "0"
    with client(tmp_path, site, max_retries=3) as http:
        payload = http.post_json(site.url + MEGABOX_REVIEWS, BODY)
    assert payload["list"]
    assert [h.status for h in site.api_hits()] == [429, 429, 503, 200]


def test_5xx_is_retried_with_backoff_then_gives_up(tmp_path: Path, site: FakeSite) -> None:
    site.faults.statuses = [500] * 10
    with client(tmp_path, site, max_retries=2) as http, pytest.raises(CrawlerError) as caught:
        http.post_json(site.url + MEGABOX_REVIEWS, BODY)
    assert caught.value.kind == "server"
    assert "gave up after 3 attempts (last: HTTP 500)" in str(caught.value)
    assert len(site.api_hits()) == 3


def test_timeouts_are_retried_then_give_up(tmp_path: Path, site: FakeSite) -> None:
    site.faults.slow_s = 0.4
    with (
        client(tmp_path, site, read_timeout_s=0.1, max_retries=1) as http,
        pytest.raises(CrawlerError) as caught,
    ):
        http.post_json(site.url + MEGABOX_REVIEWS, BODY)
    assert caught.value.kind == "timeout" and "timed out" in str(caught.value)


def test_circuit_breaker_opens_and_stops_sending(tmp_path: Path, site: FakeSite) -> None:
    site.faults.statuses = [503] * 50
    with client(tmp_path, site, max_retries=1, breaker_threshold=3) as http:
        with pytest.raises(CrawlerError) as first:
            http.post_json(site.url + MEGABOX_REVIEWS, BODY)
        assert first.value.kind == "server"  # two failures so far
        with pytest.raises(CrawlerError) as second:
            http.post_json(site.url + MEGABOX_REVIEWS, BODY)
        assert second.value.kind == "breaker_open"  # the third failure opened it
        sent = len(site.api_hits())
        with pytest.raises(CrawlerError, match="circuit breaker open"):
            http.post_json(site.url + MEGABOX_REVIEWS, BODY)
    assert sent == 3 and len(site.api_hits()) == 3  # nothing sent while open


@pytest.mark.parametrize("status", [403, 200])
def test_block_page_is_detected(tmp_path: Path, site: FakeSite, status: int) -> None:
    site.faults.block = True
    site.faults.block_status = status
    with client(tmp_path, site) as http, pytest.raises(CrawlerError) as caught:
        http.post_json(site.url + MEGABOX_REVIEWS, BODY)
    assert caught.value.kind == "blocked"
    assert f"HTTP {status}" in str(caught.value) and "Do not work around a block" in str(
        caught.value
    )
    assert len(site.api_hits()) == 1  # a block is not retried


def test_html_where_json_was_expected_is_a_schema_error(tmp_path: Path, site: FakeSite) -> None:
    with client(tmp_path, site) as http, pytest.raises(CrawlerError) as caught:
        http.get_json(site.url + "/")
    assert caught.value.kind == "schema" and "expected JSON but got text/html" in str(caught.value)


def test_content_signals_and_crawl_delay_are_obeyed(tmp_path: Path, site: FakeSite) -> None:
    site.faults.robots_extra = "Crawl-delay: 1\nContent-Signal: search=yes, ai-train=no"
    with client(tmp_path, site) as http:
        assert http.content_signals(site.url + "/") == {"search": "yes", "ai-train": "no"}
        http.post_json(site.url + MEGABOX_REVIEWS, BODY)
        http.post_json(site.url + MEGABOX_REVIEWS, BODY)
    first, second = site.api_hits()
    assert second.at - first.at >= 0.95


def test_backoff_and_retry_after_helpers() -> None:
    rng = random.Random(1)
    delays = [backoff_s(attempt, 1.0, 10.0, rng) for attempt in range(6)]
    assert 0.5 <= delays[0] <= 1.0 and 1.0 <= delays[1] <= 2.0 and 4.0 <= delays[3] <= 8.0
    assert all(5.0 <= d <= 10.0 for d in delays[4:])  # capped at the maximum
    assert retry_after_s("7") == 7.0 and retry_after_s(None) is None
    assert retry_after_s("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # a date in the past
    assert content_signals(["content-signal: AI-Train=No # note"]) == {"ai-train": "no"}
