"""Megabox: movies now showing and one-line reviews over the site's JSON endpoints.

The endpoints, request fields and response fields are described in
``docs/REVIEW_SOURCES.md`` §1 of the shared research note: ``selectMovieList.do`` lists
movies (``onairYn=Y`` now showing; ``ibxMovieNmSearch`` searches titles) and
``selectOneLnList.do`` pages through a movie's reviews, newest first. The HTML comment
tab is parsed with BeautifulSoup only as a drift canary (:func:`parse_comment_html`).
"""

from __future__ import annotations

import html
import logging
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from cinesense.config import CrawlSettings
from cinesense.crawl.client import PoliteClient
from cinesense.crawl.records import (
    Movie,
    Review,
    ReviewPage,
    as_int,
    parse_kst,
    scrub_authors,
)
from cinesense.errors import CrawlerError
from cinesense.text import normalize_review

log = logging.getLogger(__name__)

SOURCE = "megabox"
MOVIE_LIST_PATH = "/on/oh/oha/Movie/selectMovieList.do"
REVIEW_LIST_PATH = "/on/oh/oha/Movie/selectOneLnList.do"
COMMENT_PAGE_PATH = "/movie-detail/comment?rpstMovieNo={movie_id}"
KINDS = {"PREV": "post_viewing", "EXPE": "expectation"}
UNRANKED = 900  # boxoRank values from here on mean "not ranked"


def schema_error(url: str, detail: str) -> CrawlerError:
    return CrawlerError.schema(
        SOURCE, url, detail, "Megabox may have changed its API", "cinesense.crawl.megabox"
    )


def parse_movie_list(payload: Any, url: str) -> tuple[list[Movie], int | None]:
    if not isinstance(payload, dict) or not isinstance(payload.get("movieList"), list):
        raise schema_error(url, "no 'movieList' array")
    movies = []
    for item in payload["movieList"]:
        if not isinstance(item, dict):
            raise schema_error(url, "a movie entry that is not an object")
        movie_id = item.get("rpstMovieNo") or item.get("movieNo")
        if not movie_id or not isinstance(item.get("movieNm"), str):
            raise schema_error(url, "a movie without 'rpstMovieNo'/'movieNo' or 'movieNm'")
        rank = as_int(item.get("boxoRank"))
        rate = item.get("boxoBokdRt")
        digits = re.sub(r"\D", "", str(item.get("rfilmDe") or ""))
        movies.append(
            Movie(
                source=SOURCE,
                movie_id=str(movie_id),
                title=html.unescape(item["movieNm"]).strip(),
                release_date=digits[:8] or None,
                rank=rank if rank is not None and 0 < rank < UNRANKED else None,
                booking_rate=float(rate) if isinstance(rate, int | float) else None,
            )
        )
    return movies, as_int(payload.get("totCnt"))


def review_total(payload: dict[str, Any], kind_filter: str) -> int | None:
    counts = payload.get("oneLineCnt")
    if isinstance(counts, dict):
        prev, expe = as_int(counts.get("prevCnt")), as_int(counts.get("expeCnt"))
        chosen = {"PREV": [prev], "EXPE": [expe]}.get(kind_filter, [prev, expe])
        if all(count is not None for count in chosen):
            return sum(count for count in chosen if count is not None)
    items = payload.get("list") or []
    first = items[0] if items and isinstance(items[0], dict) else {}
    return as_int(first.get("totCnt"))


def parse_review_page(
    payload: Any, url: str, movie_id: str, title: str, kind_filter: str = ""
) -> ReviewPage:
    """Map one ``selectOneLnList.do`` response to records; masked texts are dropped."""
    if not isinstance(payload, dict) or not isinstance(payload.get("list"), list):
        raise schema_error(url, "no 'list' array")
    reviews: list[Review] = []
    dropped = {"masked": 0, "empty": 0}
    for item in payload["list"]:
        if not isinstance(item, dict) or as_int(item.get("onelnEvalNo")) is None:
            raise schema_error(url, "a review without a numeric 'onelnEvalNo'")
        if item.get("maskAt") == "Y":
            dropped["masked"] += 1
            continue
        raw_text = item.get("onelnEvalCn")
        if not isinstance(raw_text, str):
            raise schema_error(url, "a review without an 'onelnEvalCn' text")
        text = normalize_review(raw_text)
        if not text:
            dropped["empty"] += 1
            continue
        score = as_int(item.get("spointScore"))
        movie_title = item.get("movieNm")
        reviews.append(
            Review(
                source=SOURCE,
                review_id=str(as_int(item["onelnEvalNo"])),
                movie_id=movie_id,
                movie_title=html.unescape(movie_title) if isinstance(movie_title, str) else title,
                text=text,
                rating=score if score is not None and 1 <= score <= 10 else None,
                kind=KINDS.get(str(item.get("onelnEvalDivCd"))),
                created_at=parse_kst(item.get("fullLstUptDt")) or parse_kst(item.get("fstRegDt")),
                likes=as_int(item.get("rcmmCnt")),
            )
        )
    return ReviewPage(
        url=url,
        payload=scrub_authors(payload),
        reviews=reviews,
        total=review_total(payload, kind_filter),
        dropped=dropped,
    )


class MegaboxCrawler:
    """Megabox over plain HTTP JSON (the primary, easy source)."""

    source = SOURCE
    known_pages_to_stop = 1  # one page of only known reviews ends an incremental crawl

    def __init__(self, options: CrawlSettings, client: PoliteClient | None = None) -> None:
        self.options = options
        self.site = options.megabox
        self.client = client or PoliteClient(SOURCE, options)

    def __enter__(self) -> MegaboxCrawler:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.client.close()

    @property
    def requests(self) -> int:
        return self.client.requests

    def content_signals(self) -> dict[str, str]:
        return self.client.content_signals(self.site.base_url + "/")

    def _post(self, path: str, body: dict[str, str], referer: str) -> tuple[str, Any]:
        url = self.site.base_url + path
        headers = {
            "Accept": "application/json, text/javascript, */*; q=0.01",
            "X-Requested-With": "XMLHttpRequest",
            "Origin": self.site.base_url,
            "Referer": referer,
        }
        return url, self.client.post_json(url, body, headers=headers)

    def now_showing(self) -> list[Movie]:
        return self._movie_list(on_air="Y", search="")

    def search(self, title: str) -> list[Movie]:
        """Movies whose title matches, showing or not."""
        return self._movie_list(on_air="", search=title)

    def _movie_list(self, on_air: str, search: str) -> list[Movie]:
        size = self.site.movie_list_page_size
        movies: list[Movie] = []
        page = 1
        while True:
            body = {
                "currentPage": str(page),
                "recordCountPerPage": str(size),
                "pageType": "ticketing",
                "onairYn": on_air,
                "ibxMovieNmSearch": search,
                "specialType": "",
                "specialYn": "N",
            }
            url, payload = self._post(MOVIE_LIST_PATH, body, self.site.base_url + "/movie")
            found, total = parse_movie_list(payload, url)
            movies.extend(found)
            if not found or total is None or page * size >= total:
                break
            page += 1
        unique = {movie.movie_id: movie for movie in movies}
        return list(unique.values())

    def review_pages(self, movie_id: str, title: str = "") -> Iterator[ReviewPage]:
        """Pages of reviews, newest first, until an empty page or the last page."""
        size = self.site.page_size
        referer = self.site.base_url + COMMENT_PAGE_PATH.format(movie_id=movie_id)
        pages: int | None = None
        previous: list[str] = []
        page = 1
        while pages is None or page <= pages:
            body = {
                "movieNo": movie_id,
                "currentPage": str(page),
                "recordCountPerPage": str(size),
                "onelnEvalDivCd": self.site.review_kind,
                "orderCd": "",
            }
            url, payload = self._post(REVIEW_LIST_PATH, body, referer)
            parsed = parse_review_page(payload, url, movie_id, title, self.site.review_kind)
            if not payload["list"]:
                return
            ids = [str(item.get("onelnEvalNo")) for item in payload["list"]]
            if ids == previous:
                raise schema_error(url, f"page {page} repeats page {page - 1} (paging ignored)")
            previous = ids
            if pages is None and parsed.total is not None:
                pages = math.ceil(parsed.total / size)
            yield parsed
            page += 1

    def comment_page_url(self, movie_id: str) -> str:
        return self.site.base_url + COMMENT_PAGE_PATH.format(movie_id=movie_id)


# -- the HTML comment tab, a drift canary ---------------------------------------------


@dataclass(frozen=True)
class HtmlReview:
    review_id: str
    text: str
    rating: int | None
    kind: str | None
    masked: bool


def parse_comment_html(document: str) -> list[HtmlReview]:
    """Reviews on a rendered comment tab (``#contentData .movie-idv-story li.oneContentTag``)."""
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(document, "html.parser")
    found = []
    for item in soup.select("#contentData .movie-idv-story ul li.oneContentTag"):
        like = item.select_one(".story-like .oneLikeBtn")
        text = item.select_one(".story-txt")
        point = item.select_one(".story-cont .story-point span")
        review_id = like.get("data-no") if like else None
        code = like.get("data-cd") if like else None
        found.append(
            HtmlReview(
                review_id=str(review_id or ""),
                text=normalize_review(text.get_text(" ")) if text else "",
                rating=as_int(point.get_text().strip()) if point else None,
                kind=KINDS.get(str(code)),
                masked=item.select_one(".warning") is not None,
            )
        )
    return found


@dataclass
class CanaryReport:
    """Does the HTML comment tab still agree with the JSON API? ``problems`` says where not."""

    movie_id: str
    json_reviews: int
    html_reviews: int
    problems: list[str]

    @property
    def ok(self) -> bool:
        return not self.problems


def compare_html_with_json(
    movie_id: str, html_reviews: list[HtmlReview], json_page: ReviewPage
) -> CanaryReport:
    problems: list[str] = []
    shown = [review for review in html_reviews if not review.masked]
    if not html_reviews:
        problems.append(
            "no review items matched '#contentData .movie-idv-story ul li.oneContentTag' "
            "(the comment tab's markup changed?)"
        )
    by_id = {review.review_id: review for review in shown}
    for review in json_page.reviews:
        match = by_id.get(review.review_id)
        if match is None:
            if html_reviews:
                problems.append(f"review {review.review_id} is in the JSON but not the HTML")
            continue
        if match.text != review.text:
            problems.append(f"review {review.review_id}: text differs between HTML and JSON")
        if match.rating != review.rating:
            problems.append(
                f"review {review.review_id}: score {match.rating} in HTML, {review.rating} in JSON"
            )
    return CanaryReport(movie_id, len(json_page.reviews), len(shown), problems)
