"""Crawl benchmark against the local fake site: request rate vs the configured limit, and
parse + store throughput.

    python benchmarks/crawl_benchmark.py

1. Request rate (Megabox, plain HTTP): crawl at the configured limit (default 1 req/s,
   the platform default) and measure, from the fake site's own request log, the observed
   rate and the shortest gap between two requests. The same for CGV's browser
   route (headless Chromium), whose review calls are made by the page itself. Times are
   when requests reached the server, so they include loopback jitter.
2. Parse + store: the production path of ``crawl_movie`` (JSON decoding, mapping to
   records, dedupe, batched Parquet + raw JSONL commits and manifests to the local
   object store) fed with review pages already fetched from the fake site, so the
   network and the rate limit are left out. Median of three runs on fresh stores.

Writes the ``crawl`` entry of benchmarks/results.json and benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from cinesense.config import CgvSettings, CrawlSettings, MegaboxSettings, Settings
from cinesense.crawl.fakesite import CGV_REVIEWS, MEGABOX_REVIEWS, FakeMovie, FakeSite, Hit
from cinesense.crawl.jobs import crawl_movie, read_reviews
from cinesense.crawl.megabox import parse_review_page
from cinesense.crawl.records import ReviewPage

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results import machine, update_markdown, write_entry

log = logging.getLogger("crawl_benchmark")
MEGABOX_MOVIE, CGV_MOVIE = "26000100", "30000100"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=1.0, help="Configured requests/s.")
    parser.add_argument("--rate-requests", type=int, default=30, help="Requests to time.")
    parser.add_argument("--cgv-calls", type=int, default=8, help="CGV review calls to time.")
    parser.add_argument("--reviews", type=int, default=50_000, help="Reviews to parse+store.")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--dry-run", action="store_true", help="Measure, write no results.")
    return parser.parse_args()


def settings_for(home: Path, url: str, rate: float) -> Settings:
    return Settings(
        home=home,
        crawl=CrawlSettings(
            rate_limit_per_s=rate,
            megabox=MegaboxSettings(base_url=url),
            cgv=CgvSettings(base_url=url, scroll_wait_s=3.0),
        ),
    )


def rate_of(hits: list[Hit]) -> tuple[float, float]:
    """(requests per second over the run, shortest gap between two requests in s)."""
    times = sorted(hit.at for hit in hits)
    observed = (len(times) - 1) / (times[-1] - times[0])
    return observed, min(b - a for a, b in itertools.pairwise(times))


def measure_rate(args: argparse.Namespace, work: Path) -> dict[str, float | int]:
    # 10 reviews per page: robots.txt plus exactly `pages` review pages.
    pages = args.rate_requests - 1
    movies = [FakeMovie("megabox", MEGABOX_MOVIE, "속도 측정", pages * 10)]
    with FakeSite(movies=movies) as site:
        settings = settings_for(work / "rate", site.url, args.rate)
        started = time.monotonic()
        result = crawl_movie(settings, "megabox", MEGABOX_MOVIE)
        log.info("megabox: %d requests in %.1f s", result.requests, time.monotonic() - started)
        megabox_rate, megabox_gap = rate_of(site.hits)
        requests = len(site.hits)
    cgv_movie = [FakeMovie("cgv", CGV_MOVIE, "속도 측정", args.cgv_calls * 5 - 1)]
    with FakeSite(movies=cgv_movie) as site:
        settings = settings_for(work / "rate-cgv", site.url, args.rate)
        crawl_movie(settings, "cgv", CGV_MOVIE)
        cgv_rate, cgv_gap = rate_of(site.api_hits(CGV_REVIEWS))
        cgv_calls = len(site.api_hits(CGV_REVIEWS))
    return {
        "observed_request_rate_per_s": round(megabox_rate, 4),
        "configured_request_rate_per_s": args.rate,
        "configured_interval_s": round(1 / args.rate, 4),
        "min_gap_between_requests_s": round(megabox_gap, 4),
        "rate_requests_measured": requests,
        "cgv_observed_review_call_rate_per_s": round(cgv_rate, 4),
        "cgv_min_gap_between_review_calls_s": round(cgv_gap, 4),
        "cgv_review_calls_measured": cgv_calls,
    }


def fetch_pages(site: FakeSite, reviews: int) -> list[tuple[str, str]]:
    """Every review page of the movie as (url, response text), fetched once."""
    url = site.url + MEGABOX_REVIEWS
    pages = []
    with httpx.Client() as client:
        for page in range(1, reviews // 10 + 2):
            body = {"movieNo": MEGABOX_MOVIE, "currentPage": str(page), "recordCountPerPage": "10"}
            pages.append((url, client.post(url, json=body).text))
    return pages


class ReplayCrawler:
    """Serves pre-fetched responses to ``crawl_movie``: parsing and storing, no network."""

    source = "megabox"
    known_pages_to_stop = 1
    requests = 0

    def __init__(self, pages: list[tuple[str, str]]) -> None:
        self.pages = pages

    def content_signals(self) -> dict[str, str]:
        return {}

    def review_pages(self, movie_id: str, title: str = "") -> Iterator[ReviewPage]:
        for url, text in self.pages:
            payload = json.loads(text)
            if not payload["list"]:
                return
            yield parse_review_page(payload, url, movie_id, title)


def measure_parse_store(args: argparse.Namespace, work: Path) -> dict[str, float | int]:
    movies = [FakeMovie("megabox", MEGABOX_MOVIE, "처리량 측정", args.reviews)]
    with FakeSite(movies=movies) as site:
        pages = fetch_pages(site, args.reviews)
    rates, stored = [], 0
    for run in range(args.runs):
        home = work / f"store-{run}"
        settings = settings_for(home, "http://fake.invalid", args.rate)
        started = time.perf_counter()
        replay = ReplayCrawler(pages)
        result = crawl_movie(settings, "megabox", MEGABOX_MOVIE, crawler=replay)
        seconds = time.perf_counter() - started
        stored = len(read_reviews(settings, "megabox"))
        assert stored == result.new, (stored, result.new)
        rates.append(result.new / seconds)
        log.info("parse+store run %d: %d reviews in %.2f s", run, result.new, seconds)
        shutil.rmtree(home)
    payload_bytes = sum(len(text.encode()) for _, text in pages)
    return {
        "parse_store_reviews_per_s": round(statistics.median(rates), 1),
        "parse_store_reviews": stored,
        "parse_store_pages": len(pages),
        "parse_store_payload_mb": round(payload_bytes / 2**20, 2),
    }


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    args = parse_args()
    with tempfile.TemporaryDirectory(prefix="crawl-bench-") as directory:
        work = Path(directory)
        metrics = {**measure_rate(args, work), **measure_parse_store(args, work)}
    log.info("%s", metrics)
    if args.dry_run:
        return
    write_entry("crawl", metrics)
    configured = metrics["configured_request_rate_per_s"]
    lines = [
        "## crawl — request rate vs the limit, and parse + store throughput (fake site)",
        "",
        f"Machine: {machine()}. Date: {time.strftime('%Y-%m-%d')}. "
        f"Command: `python {' '.join(sys.argv)}`",
        "",
        "| measure | value |",
        "|---|---|",
        f"| configured limit (requests/s per host) | {configured} |",
        f"| Megabox (HTTP): observed rate over {metrics['rate_requests_measured']} requests "
        f"| {metrics['observed_request_rate_per_s']} /s |",
        f"| Megabox: shortest gap between two requests "
        f"(limit: {metrics['configured_interval_s']} s) "
        f"| {metrics['min_gap_between_requests_s']} s |",
        f"| CGV (headless Chromium): observed review-call rate over "
        f"{metrics['cgv_review_calls_measured']} calls "
        f"| {metrics['cgv_observed_review_call_rate_per_s']} /s |",
        f"| CGV: shortest gap between two review calls "
        f"| {metrics['cgv_min_gap_between_review_calls_s']} s |",
        f"| parse + store ({metrics['parse_store_reviews']} reviews, "
        f"{metrics['parse_store_pages']} pages, median of {args.runs}) "
        f"| {metrics['parse_store_reviews_per_s']} reviews/s |",
        "",
        "Rates are taken from the fake site's own log of when each request arrived; the "
        "limiter spaces requests 2 % wider than the limit so that arrival jitter does not push "
        "the observed rate over it. Parse + "
        "store is `crawl_movie`'s own path (JSON decoding, record mapping, dedupe, Parquet and "
        "raw JSONL commits with manifests to the local object store) replaying pages fetched "
        "beforehand, so neither the network nor the rate limit is in it.",
    ]
    update_markdown("crawl", lines)


if __name__ == "__main__":
    main()
