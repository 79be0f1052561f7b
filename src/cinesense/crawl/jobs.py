"""What DAGs, the API, the UI and the CLI call: list, crawl, read.

* :func:`now_showing` — movies now showing at a source.
* :func:`crawl_movie` — crawl one movie into the review store; returns new/duplicate counts.
* :func:`crawl_now_showing` / :func:`crawl_sources` — every movie now showing; a blocked
  source stops cleanly while the others go on.
* :func:`read_reviews` — a movie's or a source's reviews as a DataFrame.
* :func:`list_movies` — stored movies with review counts.

Incremental crawling: pages come newest first. Once a movie's crawl has reached its
oldest review (``complete`` in the manifest), a later crawl stops at the first page that
holds only known reviews (two calls for CGV, whose calls are small). Until then known
pages are skipped, not stopped at, so a crawl cut short by ``max_reviews`` or an
interruption is completed by the next one.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Protocol

from cinesense.config import CgvSettings, MegaboxSettings, Settings
from cinesense.crawl.records import (
    SOURCES,
    Movie,
    Review,
    ReviewPage,
    check_movie_id,
    check_source,
)
from cinesense.crawl.store import MovieManifest, ReviewStore, RunInfo
from cinesense.errors import CrawlerError
from cinesense.storage import ObjectStore, open_store

if TYPE_CHECKING:
    import pandas as pd

    from cinesense.crawl.cgv import CgvCrawler
    from cinesense.crawl.megabox import CanaryReport, MegaboxCrawler

log = logging.getLogger(__name__)

# Errors after which a source's other movies are not tried in the same run.
STOPS_SOURCE = frozenset({"blocked", "breaker_open", "browser", "rate_limited"})


class SourceCrawler(Protocol):
    """What :func:`crawl_movie` needs from a source (MegaboxCrawler, CgvCrawler, a replay)."""

    source: str
    known_pages_to_stop: int  # pages of only known reviews that end an incremental crawl

    @property
    def requests(self) -> int: ...

    def content_signals(self) -> dict[str, str]: ...

    def review_pages(self, movie_id: str, title: str = "") -> Iterator[ReviewPage]: ...


@dataclass
class CrawlProgress:
    movie_id: str
    new: int
    duplicate: int
    pages: int
    total: int | None  # reviews the source says the movie has, when it says


@dataclass
class CrawlResult:
    source: str
    movie_id: str
    title: str
    new: int
    duplicate: int
    pages: int
    requests: int
    stopped: str  # "end" (oldest review reached), "known" (incremental), "max_reviews"
    complete: bool
    allow_training: bool
    run_id: str
    seconds: float
    dropped: dict[str, int] = field(default_factory=dict)


@dataclass
class SourceResult:
    source: str
    movies: list[CrawlResult] = field(default_factory=list)
    failures: dict[str, str] = field(default_factory=dict)  # movie id (or "*") → message
    stopped_early: str | None = None

    @property
    def ok(self) -> bool:
        return not self.failures


def site_settings(settings: Settings, source: str) -> MegaboxSettings | CgvSettings:
    site: MegaboxSettings | CgvSettings = getattr(settings.crawl, check_source(source))
    if not site.enabled:
        raise CrawlerError(
            source,
            site.base_url,
            "this source is switched off",
            kind="input",
            hint=f"Set CINESENSE_CRAWL__{source.upper()}__ENABLED=true to crawl it.",
        )
    return site


def open_crawler(settings: Settings, source: str) -> MegaboxCrawler | CgvCrawler:
    """A crawler for ``source``; use it as a context manager (it holds a client/browser)."""
    site_settings(settings, source)
    if source == "megabox":
        from cinesense.crawl.megabox import MegaboxCrawler

        return MegaboxCrawler(settings.crawl)
    from cinesense.crawl.cgv import CgvCrawler

    return CgvCrawler(settings.crawl)


def review_store(settings: Settings, objects: ObjectStore | None = None) -> ReviewStore:
    return ReviewStore(objects or open_store(settings), settings.crawl.store_prefix)


def now_showing(settings: Settings, source: str) -> list[Movie]:
    with open_crawler(settings, source) as crawler:
        return crawler.now_showing()


def search_movies(settings: Settings, title: str) -> list[Movie]:
    """Megabox movies whose title matches (showing or not)."""
    from cinesense.crawl.megabox import MegaboxCrawler

    site_settings(settings, "megabox")
    with MegaboxCrawler(settings.crawl) as crawler:
        return crawler.search(title)


def allow_training(setting: bool | None, signals: dict[str, str], source: str) -> bool:
    """An explicit setting wins; otherwise the site's robots.txt ``ai-train`` signal."""
    says_no = signals.get("ai-train") == "no"
    if setting is None:
        return not says_no
    if setting and says_no:
        log.warning(
            "%s: robots.txt signals ai-train=no, but CINESENSE_CRAWL__%s__ALLOW_TRAINING=true "
            "marks its reviews usable for training (an operator's explicit decision)",
            source,
            source.upper(),
        )
    return setting


def crawl_movie(
    settings: Settings,
    source: str,
    movie_id: str,
    *,
    max_reviews: int | None = None,
    title: str = "",
    store: ObjectStore | None = None,
    crawler: SourceCrawler | None = None,
    progress: Callable[[CrawlProgress], None] | None = None,
) -> CrawlResult:
    """Crawl one movie's reviews into the store; returns how many were new and duplicate.

    New reviews are committed every ``crawl.commit_every`` and at the end; an error or an
    interruption loses only the uncommitted ones and never advances the manifest past
    stored data. Pass ``crawler`` to reuse one client/browser across movies.
    """
    site = site_settings(settings, source)
    movie_id = check_movie_id(source, movie_id)
    if max_reviews is not None and max_reviews < 1:
        raise CrawlerError(
            source, "-", f"max_reviews must be at least 1 (got {max_reviews})", kind="input"
        )
    reviews = review_store(settings, store)
    manifest = reviews.manifest(source, movie_id) or MovieManifest(
        source=source, movie_id=movie_id, title=title
    )
    run = _Run(settings, source, movie_id, title or manifest.title, manifest, reviews)
    if crawler is None:
        with open_crawler(settings, source) as own:
            return run.crawl(own, site.allow_training, max_reviews, progress)
    return run.crawl(crawler, site.allow_training, max_reviews, progress)


class _Run:
    """One crawl of one movie: dedupe, incremental stop, batched commits."""

    def __init__(
        self,
        settings: Settings,
        source: str,
        movie_id: str,
        title: str,
        manifest: MovieManifest,
        reviews: ReviewStore,
    ) -> None:
        self.settings = settings
        self.source = source
        self.movie_id = movie_id
        self.title = title
        self.manifest = manifest
        self.store = reviews
        self.was_complete = manifest.complete
        self.known = reviews.known_ids(manifest)
        self.run_id = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + uuid.uuid4().hex[:6]
        self.started = datetime.now(UTC)
        self.pending: list[Review] = []
        self.pending_pages: list[ReviewPage] = []
        self.new = self.duplicate = self.pages = self.seq = 0
        self.dropped: Counter[str] = Counter()

    def crawl(
        self,
        crawler: SourceCrawler,
        setting: bool | None,
        max_reviews: int | None,
        progress: Callable[[CrawlProgress], None] | None,
    ) -> CrawlResult:
        clock = time.monotonic()
        requests_before = crawler.requests
        allowed = allow_training(setting, crawler.content_signals(), self.source)
        stopped, known_streak = "end", 0
        self.title = self.title or _title_from_listing(crawler, self.movie_id)
        for page in crawler.review_pages(self.movie_id, self.title):
            self.pages += 1
            self.dropped.update(page.dropped)
            fresh = self._fresh(page.reviews)
            if max_reviews is not None:
                fresh = fresh[: max_reviews - self.new]
            if fresh:
                self.title = self.title or fresh[0].movie_title
                self.pending.extend(fresh)
                self.pending_pages.append(page)
                self.new += len(fresh)
                known_streak = 0
            elif page.reviews and self.was_complete:
                known_streak += 1
            if progress:
                progress(
                    CrawlProgress(self.movie_id, self.new, self.duplicate, self.pages, page.total)
                )
            if len(self.pending) >= self.settings.crawl.commit_every:
                self._commit(allowed, complete=False, stopped="in_progress", requests=0)
            if max_reviews is not None and self.new >= max_reviews:
                stopped = "max_reviews"
                break
            if known_streak >= crawler.known_pages_to_stop:
                stopped = "known"
                break
        complete = stopped == "end" or (stopped == "known" and self.was_complete)
        if self.pending or self.manifest.parts:
            self._commit(allowed, complete, stopped, crawler.requests - requests_before)
        else:  # nothing stored, ever: no manifest for an empty movie or a mistyped id
            log.warning(
                "%s %s: the site returned no reviews (is the movie id right?)",
                self.source,
                self.movie_id,
            )
        result = CrawlResult(
            source=self.source,
            movie_id=self.movie_id,
            title=self.title,
            new=self.new,
            duplicate=self.duplicate,
            pages=self.pages,
            requests=crawler.requests - requests_before,
            stopped=stopped,
            complete=complete,
            allow_training=allowed,
            run_id=self.run_id,
            seconds=round(time.monotonic() - clock, 3),
            dropped=dict(self.dropped),
        )
        log.info(
            "%s %s: %d new, %d known, %d pages, stopped: %s",
            self.source,
            self.movie_id,
            self.new,
            self.duplicate,
            self.pages,
            stopped,
        )
        return result

    def _fresh(self, reviews: list[Review]) -> list[Review]:
        fresh = []
        for review in reviews:
            if review.review_id in self.known:
                self.duplicate += 1
            else:
                self.known.add(review.review_id)
                fresh.append(review)
        return fresh

    def _commit(self, allowed: bool, complete: bool, stopped: str, requests: int) -> None:
        now = datetime.now(UTC)
        run = RunInfo(
            run_id=self.run_id,
            started_at=self.started,
            finished_at=now,
            new=self.new,
            duplicate=self.duplicate,
            pages=self.pages,
            requests=requests,
            stopped=stopped,
            dropped=dict(self.dropped),
        )
        self.manifest.title = self.title or self.manifest.title
        if self.manifest.title:  # a source whose review calls do not name the movie (CGV)
            self.pending = [
                review if review.movie_title else replace(review, movie_title=self.manifest.title)
                for review in self.pending
            ]
        self.manifest = self.store.commit(
            self.manifest,
            self.pending,
            self.pending_pages,
            allow_training=allowed,
            run=run,
            seq=self.seq,
            complete=complete,
            crawled_at=now,
        )
        self.seq += 1
        self.pending, self.pending_pages = [], []


def _title_from_listing(crawler: SourceCrawler, movie_id: str) -> str:
    """The movie's title from the source's now-showing list ('' when it is not listed)."""
    listing = getattr(crawler, "now_showing", None)
    if listing is None:
        return ""
    try:
        movies: list[Movie] = listing()
    except CrawlerError as error:
        log.warning("could not look up the title of %s: %s", movie_id, error)
        return ""
    return next((movie.title for movie in movies if movie.movie_id == movie_id), "")


def crawl_now_showing(
    settings: Settings,
    source: str,
    *,
    max_reviews: int | None = None,
    max_movies: int | None = None,
    store: ObjectStore | None = None,
    progress: Callable[[CrawlProgress], None] | None = None,
    on_movie: Callable[[Movie], None] | None = None,
) -> SourceResult:
    """Crawl every movie now showing at ``source`` (up to ``max_movies``), one session.

    A failing movie is recorded and the next one tried, except after a block, an open
    circuit breaker, a 429 or a browser failure, which end this source's run.
    """
    result = SourceResult(source)
    with open_crawler(settings, source) as crawler:
        movies = crawler.now_showing()[:max_movies]
        for movie in movies:
            if on_movie:
                on_movie(movie)
            try:
                result.movies.append(
                    crawl_movie(
                        settings,
                        source,
                        movie.movie_id,
                        max_reviews=max_reviews,
                        title=movie.title,
                        store=store,
                        crawler=crawler,
                        progress=progress,
                    )
                )
            except CrawlerError as error:
                result.failures[movie.movie_id] = str(error)
                if error.kind in STOPS_SOURCE:
                    result.stopped_early = str(error)
                    break
    return result


def crawl_sources(
    settings: Settings,
    sources: list[str] | None = None,
    *,
    max_reviews: int | None = None,
    max_movies: int | None = None,
    store: ObjectStore | None = None,
) -> dict[str, SourceResult]:
    """Every enabled source's now-showing list; a source that fails does not stop others."""
    chosen = sources or [s for s in SOURCES if getattr(settings.crawl, s).enabled]
    results = {}
    for source in chosen:
        try:
            results[source] = crawl_now_showing(
                settings, source, max_reviews=max_reviews, max_movies=max_movies, store=store
            )
        except CrawlerError as error:
            log.error("%s", error)
            results[source] = SourceResult(source, failures={"*": str(error)})
            results[source].stopped_early = str(error)
    return results


def read_reviews(
    settings: Settings,
    source: str | None = None,
    movie_id: str | None = None,
    *,
    training_only: bool = False,
    store: ObjectStore | None = None,
) -> pd.DataFrame:
    """Stored reviews (newest first) of a movie, a source or all; one row per review."""
    if source is not None:
        check_source(source)
    if movie_id is not None:
        movie_id = check_movie_id(source or "-", movie_id)
    frame = review_store(settings, store).read(source, movie_id)
    if training_only:
        frame = frame[frame["allow_training"].fillna(False).astype(bool)].reset_index(drop=True)
    return frame


def list_movies(
    settings: Settings, source: str | None = None, *, store: ObjectStore | None = None
) -> pd.DataFrame:
    """One row per stored movie: counts, newest review, last crawl, completeness."""
    import pandas as pd

    if source is not None:
        check_source(source)
    rows = [
        {
            "source": m.source,
            "movie_id": m.movie_id,
            "title": m.title,
            "reviews": m.review_count,
            "newest_review_at": m.newest_review_at,
            "last_crawled_at": m.updated_at,
            "complete": m.complete,
            "allow_training": m.allow_training,
        }
        for m in review_store(settings, store).manifests(source)
    ]
    columns = [
        "source",
        "movie_id",
        "title",
        "reviews",
        "newest_review_at",
        "last_crawled_at",
        "complete",
        "allow_training",
    ]
    return pd.DataFrame(rows, columns=columns)


def as_corpus(frame: pd.DataFrame) -> pd.DataFrame:
    """Stored reviews in the corpus readers' columns (for ``build_dataset``)."""
    from cinesense.data.corpus import REVIEW_COLUMNS

    corpus = frame.assign(
        rating=frame["rating"].astype("Float64"),
        date=frame["created_at"].dt.strftime("%Y-%m-%d").fillna(""),
    )
    return corpus[REVIEW_COLUMNS].reset_index(drop=True)


def megabox_canary(settings: Settings, movie_id: str) -> CanaryReport:
    """Render Megabox's comment tab in Chromium, parse it with BeautifulSoup and compare it
    with the JSON API's first page: a drift alarm for either."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

    from cinesense.crawl.browser import BrowserSession
    from cinesense.crawl.megabox import (
        MegaboxCrawler,
        compare_html_with_json,
        parse_comment_html,
    )

    site_settings(settings, "megabox")
    movie_id = check_movie_id("megabox", movie_id)
    with MegaboxCrawler(settings.crawl) as crawler:
        first = next(iter(crawler.review_pages(movie_id)), None)
        url = crawler.comment_page_url(movie_id)
    if first is None:
        raise CrawlerError("megabox", url, "the movie has no reviews to compare", kind="input")
    with BrowserSession("megabox", settings.crawl) as browser:
        browser.goto(url)
        try:  # the tab fills its list by script; any list item will do (classes may drift)
            browser.page.wait_for_selector(
                "#contentData ul li", timeout=min(settings.crawl.browser_timeout_s, 10) * 1000
            )
        except PlaywrightTimeoutError:
            log.warning("canary: no review list rendered at %s", url)
        document = browser.page.content()
    return compare_html_with_json(movie_id, parse_comment_html(document), first)
