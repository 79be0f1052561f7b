"""The browser route: Playwright driving Debian's Chromium (no browser download).

Used where a site is a browser app whose data calls only a real browser can make (CGV),
and for the Megabox comment-tab canary. Every navigation and in-page fetch goes through
the same :class:`~cinesense.crawl.politeness.Gate` as plain HTTP. Requests the page's own
scripts make pass a route first: those to paths robots.txt disallows are aborted, and the
data calls being captured (:meth:`BrowserSession.listen`) are held until the host's turn
under the rate limit, so the limit holds at the moment each call leaves the browser.
The user agent is Chromium's own plus the crawler's (honest: it says both
"HeadlessChrome" and who we are).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cinesense.config import CrawlSettings
from cinesense.crawl.politeness import Gate, Reply, TransientError, block_marker
from cinesense.errors import CrawlerError

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Page, Playwright, Response, Route

log = logging.getLogger(__name__)

FETCH_JS = """async (url) => {
  const r = await fetch(url, {headers: {Accept: 'application/json'}, credentials: 'include'});
  return {status: r.status, type: r.headers.get('content-type') || '', text: await r.text(),
          retryAfter: r.headers.get('retry-after')};
}"""
SCROLL_JS = "window.scrollTo(0, document.documentElement.scrollHeight)"
POLL_MS = 50
RESCROLL_S = 0.25


class BrowserSession:
    """One headless Chromium with one page; open with ``with BrowserSession(...)``."""

    def __init__(self, source: str, options: CrawlSettings) -> None:
        self.source = source
        self.options = options
        self.gate = Gate(source, options, self._robots_reply)
        self.aborted: list[str] = []  # page requests refused because robots.txt disallows
        self._playwright: Playwright | None = None
        self._browser: Browser | None = None
        self._context: BrowserContext | None = None
        self._page: Page | None = None
        self._matches: Callable[[str], bool] | None = None
        self._captured: list[Response] = []
        self._route_errors: list[CrawlerError] = []

    def __enter__(self) -> BrowserSession:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def page(self) -> Page:
        if self._page is None:
            raise RuntimeError("BrowserSession is not open")
        return self._page

    @property
    def requests(self) -> int:
        return self.gate.requests

    def _fail(self, problem: str, hint: str) -> CrawlerError:
        return CrawlerError(self.source, "chromium", problem, kind="browser", hint=hint)

    def open(self) -> None:
        from playwright.sync_api import Error, sync_playwright

        path = self.options.chromium_path
        if not path or not Path(path).is_file():
            raise self._fail(
                f"Chromium not found ({path or 'not on PATH'})",
                "Install it (Debian/Ubuntu: apt-get install -y chromium) or set "
                "CINESENSE_CRAWL__CHROMIUM_PATH to its executable.",
            )
        self._playwright = sync_playwright().start()
        try:
            self._browser = self._playwright.chromium.launch(
                executable_path=path,
                headless=True,
                timeout=self.options.browser_timeout_s * 1000,
                args=["--disable-gpu", "--disable-dev-shm-usage"],
            )
            probe = self._browser.new_page()
            chromium_agent = probe.evaluate("navigator.userAgent")
            probe.close()
            self._context = self._browser.new_context(
                user_agent=f"{chromium_agent} {self.options.user_agent}",
                locale="ko-KR",
                viewport={"width": 1280, "height": 720},
            )
            self._context.set_default_timeout(self.options.browser_timeout_s * 1000)
            self._context.route("**/*", self._route)
            self._page = self._context.new_page()
            self._page.on("response", self._on_response)
        except Error as error:
            self.close()
            first_line = str(error).strip().splitlines()[0] if str(error).strip() else "error"
            raise self._fail(
                f"Chromium at {path} did not start ({first_line})",
                "Check that it runs (`chromium --headless --version`) and that its "
                "libraries are installed (apt-get install -y chromium).",
            ) from error

    def close(self) -> None:
        for closing in (self._context, self._browser):
            if closing is not None:
                try:
                    closing.close()
                except Exception as error:  # already gone: nothing left to release
                    log.debug("closing %s: %s", closing, error)
        if self._playwright is not None:
            self._playwright.stop()
        self._playwright = self._browser = self._context = self._page = None

    # -- requests through the gate -------------------------------------------------------

    def goto(self, url: str) -> Reply:
        """Navigate the page to ``url`` (robots, rate limit, retries, block checks)."""
        reply = self.gate.request(url, lambda: self._navigate(self.page, url), "html")
        rendered = self.page.content()
        marker = block_marker(rendered, self.options.block_markers)
        if marker:
            self.gate.check(url, Reply(403, "text/html", rendered), "html")
        return reply

    def fetch_json(self, url: str) -> Any:
        """``fetch(url)`` inside the page (same origin, the browser's own network stack)."""
        return self.gate.request(url, lambda: self._in_page_fetch(url), "json").data

    def scroll_for_responses(self, captured: list[Response], wait_s: float) -> list[Reply]:
        """Scroll to the bottom, wait up to ``wait_s`` for matching responses, check them.

        ``captured`` is filled by a listener the caller attached before navigating, so a
        call the page makes on its own (before any scroll) is not lost.
        """
        if not captured:
            # The call the scroll triggers may be held by the rate limit (see _route).
            deadline = time.monotonic() + wait_s + 1.0 / self.options.rate_limit_per_s
            next_scroll = 0.0
            while not captured and time.monotonic() < deadline and not self._route_errors:
                # Scroll again now and then: the page may still have been rendering the
                # last batch (so nothing new was in view) when we scrolled.
                if time.monotonic() >= next_scroll:
                    self.page.evaluate(SCROLL_JS)
                    next_scroll = time.monotonic() + RESCROLL_S
                self.page.wait_for_timeout(POLL_MS)
        if self._route_errors:
            raise self._route_errors.pop(0)
        replies = []
        while captured:
            response = captured.pop(0)
            reply = Reply(
                status=response.status,
                content_type=response.headers.get("content-type", ""),
                text=response.text(),
                retry_after=response.headers.get("retry-after"),
                url=response.url,
            )
            replies.append(self.gate.check(response.url, reply, "json"))
        return replies

    def listen(self, matches: Callable[[str], bool]) -> list[Response]:
        """Collect the page's responses whose URL matches (from now on; replaces any
        earlier listen)."""
        self._matches = matches
        self._captured = []
        self._route_errors = []
        return self._captured

    def _on_response(self, response: Response) -> None:
        if self._matches is not None and self._matches(response.url):
            self._captured.append(response)

    # -- senders ---------------------------------------------------------------------

    def _navigate(self, page: Page, url: str) -> Reply:
        from playwright.sync_api import Error, TimeoutError

        try:
            response = page.goto(url, wait_until="domcontentloaded")
        except TimeoutError as error:
            raise TransientError("timeout", "page load timed out") from error
        except Error as error:
            raise TransientError("connection", _first_line(error)) from error
        if response is None:
            return Reply(200, "text/html", page.content())
        return Reply(
            status=response.status,
            content_type=response.headers.get("content-type", ""),
            text=response.text(),
            retry_after=response.headers.get("retry-after"),
        )

    def _in_page_fetch(self, url: str) -> Reply:
        from playwright.sync_api import Error

        try:
            result = self.page.evaluate(FETCH_JS, url)
        except Error as error:
            raise TransientError("connection", _first_line(error)) from error
        return Reply(result["status"], result["type"], result["text"], result["retryAfter"])

    def _robots_reply(self, url: str) -> Reply:
        if self._context is None:
            raise RuntimeError("BrowserSession is not open")
        scratch = self._context.new_page()
        try:
            return self._navigate(scratch, url)
        finally:
            scratch.close()

    def _route(self, route: Route) -> None:
        """Every request the browser makes: obey robots.txt; pace the captured calls."""
        url = route.request.url
        rules = self.gate.cached_robots(url) if url.startswith("http") else None
        disallowed = rules is not None and not rules.allows(self.options.user_agent, url)
        if disallowed and not url.endswith("/robots.txt"):
            self.aborted.append(url)
            route.abort("blockedbyclient")
            return
        if self._matches is not None and self._matches(url):
            try:
                self.gate.wait_turn(url)
            except CrawlerError as error:  # breaker open: refuse, and report it to the crawl
                self._route_errors.append(error)
                route.abort("blockedbyclient")
                return
        route.continue_()


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
