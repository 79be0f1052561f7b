"""CGV: a browser app behind anti-bot protection, crawled with a real headless Chromium.

The crawler opens a movie's page, scrolls, and reads the JSON responses of the review
API the page itself calls (URL containing ``searchRviewRviewPageList``; the page signs
those calls, we do not). Movies now showing come from the booking chart endpoint,
fetched inside the page. A block (403, block-page markers) stops the crawl with a clear
error. CGV's robots.txt signals ``ai-train=no``: its reviews are stored as not for
training unless an operator decides otherwise (``CINESENSE_CRAWL__CGV__ALLOW_TRAINING``).

What the egg score (``egScore``) means is not publicly confirmed, so the raw value is
kept in ``egg_raw`` and a label is set only for values mapped in
``CINESENSE_CRAWL__CGV__EGG_LABELS``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from cinesense.config import CrawlSettings
from cinesense.crawl.browser import BrowserSession
from cinesense.crawl.records import Movie, Review, ReviewPage, as_int, parse_kst, scrub_authors
from cinesense.errors import CrawlerError
from cinesense.text import normalize_review

log = logging.getLogger(__name__)

SOURCE = "cgv"
LABELS = {"positive": 1, "negative": 0}


def schema_error(url: str, detail: str) -> CrawlerError:
    return CrawlerError.schema(
        SOURCE, url, detail, "CGV may have changed its site", "cinesense.crawl.cgv"
    )


def envelope_data(payload: Any, url: str) -> Any:
    """CGV wraps every answer in ``{"statusCode": 0, "statusMessage": …, "data": …}``."""
    if not isinstance(payload, dict) or "statusCode" not in payload:
        raise schema_error(url, "no {statusCode, data} envelope")
    if as_int(payload["statusCode"]) != 0:
        raise CrawlerError(
            SOURCE,
            url,
            f"the API answered statusCode {payload['statusCode']} "
            f"({str(payload.get('statusMessage', ''))[:80]})",
            kind="http",
        )
    return payload.get("data")


def parse_chart(payload: Any, url: str) -> list[Movie]:
    data = envelope_data(payload, url)
    if not isinstance(data, list):
        raise schema_error(url, "'data' is not a list of movies")
    movies = []
    for rank, item in enumerate(data, start=1):
        if not isinstance(item, dict) or not item.get("movNo") or not item.get("movNm"):
            raise schema_error(url, "a movie without 'movNo' or 'movNm'")
        rate = item.get("atktRate")
        try:
            booking_rate = float(rate) if rate not in (None, "") else None
        except (TypeError, ValueError):
            booking_rate = None
        movies.append(
            Movie(
                source=SOURCE,
                movie_id=str(item["movNo"]),
                title=str(item["movNm"]).strip(),
                release_date=str(item.get("rlsYmd") or "")[:8] or None,
                rank=rank,
                booking_rate=booking_rate,
            )
        )
    return movies


def egg_value(raw: object) -> str | None:
    """The first number in ``egScore`` (its documented form varies), as text."""
    if raw is None:
        return None
    text = str(raw).strip()
    digits = ""
    for char in text:
        if char.isdigit() or (char == "." and digits and "." not in digits):
            digits += char
        elif digits:
            break
    return digits.rstrip(".") or None


def parse_review_response(
    payload: Any, url: str, movie_id: str, title: str, egg_labels: dict[str, str]
) -> ReviewPage:
    data = envelope_data(payload, url)
    if not isinstance(data, dict) or not isinstance(data.get("list"), list):
        raise schema_error(url, "no 'data.list' array")
    reviews = []
    dropped = {"empty": 0}
    for item in data["list"]:
        if not isinstance(item, dict) or item.get("rviewNo") in (None, ""):
            raise schema_error(url, "a review without 'rviewNo'")
        if not isinstance(item.get("rviewCont"), str):
            raise schema_error(url, "a review without an 'rviewCont' text")
        text = normalize_review(item["rviewCont"])
        if not text:
            dropped["empty"] += 1
            continue
        egg = egg_value(item.get("egScore"))
        label = egg_labels.get(egg) if egg is not None else None
        reviews.append(
            Review(
                source=SOURCE,
                review_id=str(item["rviewNo"]),
                movie_id=movie_id,
                movie_title=title,
                text=text,
                label=LABELS[label] if label else None,
                egg_raw=egg,
                created_at=parse_kst(item.get("creDt")),
            )
        )
    return ReviewPage(url=url, payload=scrub_authors(payload), reviews=reviews, dropped=dropped)


class CgvCrawler:
    """CGV through Chromium: open, scroll, capture the page's review API responses."""

    source = SOURCE
    # The page loads few reviews per call (5), so two calls of only known reviews in a
    # row end an incremental crawl.
    known_pages_to_stop = 2

    def __init__(self, options: CrawlSettings, browser: BrowserSession | None = None) -> None:
        self.options = options
        self.site = options.cgv
        self.browser = browser or BrowserSession(SOURCE, options)
        self._opened = False

    def __enter__(self) -> CgvCrawler:
        self.browser.open()
        self._opened = True
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._opened:
            self.browser.close()
            self._opened = False

    @property
    def requests(self) -> int:
        return self.browser.requests

    def content_signals(self) -> dict[str, str]:
        return self.browser.gate.robots(self.site.base_url + "/").signals

    def now_showing(self) -> list[Movie]:
        """The booking chart (ordered by booking rate; upcoming films have no rate yet)."""
        self.browser.goto(self.site.base_url + "/")
        url = self.site.base_url + self.site.chart_path
        return parse_chart(self.browser.fetch_json(url), url)

    def movie_url(self, movie_id: str) -> str:
        return self.site.base_url + self.site.movie_page_path.format(movie_id=movie_id)

    def review_pages(self, movie_id: str, title: str = "") -> Iterator[ReviewPage]:
        marker = self.site.review_api_marker
        captured = self.browser.listen(lambda url: marker in url)
        url = self.movie_url(movie_id)
        self.browser.goto(url)
        calls = 0
        while True:
            replies = self.browser.scroll_for_responses(captured, self.site.scroll_wait_s)
            if not replies:
                if calls == 0:
                    raise schema_error(
                        url,
                        f"scrolling the movie page made no review call (no URL containing "
                        f"{marker!r} within {self.site.scroll_wait_s} s)",
                    )
                log.info("cgv %s: no further review calls after %d; done", movie_id, calls)
                return
            for reply in replies:
                calls += 1
                page = parse_review_response(
                    reply.data, reply.url, movie_id, title, dict(self.site.egg_labels)
                )
                if not page.payload["data"]["list"]:
                    return
                yield page
