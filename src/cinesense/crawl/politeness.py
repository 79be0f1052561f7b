"""Politeness and resilience around every request, whatever sends it (httpx or Chromium).

A :class:`Gate` wraps one request: it checks robots.txt (fetched once per host and
cached), waits for the host's turn under the rate limit, refuses while the host's circuit
breaker is open, retries timeouts, 429 and 5xx with exponential backoff and jitter
(honouring ``Retry-After``), and inspects the answer for block pages and for HTML where
JSON was expected. Every failure is a :class:`~cinesense.errors.CrawlerError` naming the
source, the URL and what was wrong.
"""

from __future__ import annotations

import email.utils
import json
import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit
from urllib.robotparser import RobotFileParser

from cinesense.config import CrawlSettings
from cinesense.errors import CrawlerError

log = logging.getLogger(__name__)

Expect = Literal["json", "html", "text"]
MAX_SLOWDOWN = 16.0  # a host that answered 429 is asked at most 16x less often
# Requests are spaced 2 % wider than the limit, so that a few milliseconds of network and
# scheduling jitter never push the rate the site sees above the configured limit.
HEADROOM = 1.02


@dataclass
class Reply:
    """What came back, reduced to what the checks need (from httpx or from Chromium)."""

    status: int
    content_type: str
    text: str
    retry_after: str | None = None
    data: Any = None  # parsed JSON when JSON was expected
    url: str = ""


class TransientError(Exception):
    """Raised by a sender for a timeout or a connection failure (retried)."""

    def __init__(self, kind: Literal["timeout", "connection"], detail: str) -> None:
        super().__init__(detail)
        self.kind = kind


class _Retryable(Exception):
    def __init__(self, kind: str, problem: str, retry_after_s: float | None = None) -> None:
        super().__init__(problem)
        self.kind = kind
        self.problem = problem
        self.retry_after_s = retry_after_s


def host_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


class HostRateLimiter:
    """Spaces requests to one host by at least an interval; shared by the whole process.

    Each caller reserves the next free slot under a lock and sleeps outside it, so threads
    and sessions hitting the same host together still respect the limit.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._next_slot: dict[str, float] = {}

    def wait(self, host: str, interval_s: float) -> None:
        with self._lock:
            now = time.monotonic()
            slot = max(now, self._next_slot.get(host, 0.0))
            self._next_slot[host] = slot + interval_s
        if slot > now:
            time.sleep(slot - now)


RATE_LIMITER = HostRateLimiter()


class CircuitBreaker:
    """Opens for a host after ``threshold`` consecutive failures; refuses until cooled down.

    After the cooldown one request may try again (half-open): success closes the breaker,
    another failure opens it for a new cooldown.
    """

    def __init__(self, threshold: int, cooldown_s: float) -> None:
        self.threshold = threshold
        self.cooldown_s = cooldown_s
        self._failures: dict[str, int] = {}
        self._opened_at: dict[str, float] = {}

    def remaining_s(self, host: str) -> float:
        opened = self._opened_at.get(host)
        if opened is None:
            return 0.0
        return max(0.0, opened + self.cooldown_s - time.monotonic())

    def record_success(self, host: str) -> None:
        self._failures.pop(host, None)
        self._opened_at.pop(host, None)

    def record_failure(self, host: str) -> None:
        count = self._failures.get(host, 0) + 1
        self._failures[host] = count
        if count >= self.threshold:
            self._opened_at[host] = time.monotonic()


@dataclass
class RobotsRules:
    """A host's robots.txt: path rules, crawl delay and content signals (ai-train=no…)."""

    parser: RobotFileParser
    signals: dict[str, str] = field(default_factory=dict)
    fetched_at: float = field(default_factory=time.monotonic)

    @classmethod
    def from_reply(cls, status: int, text: str) -> RobotsRules:
        """RFC 9309: a 4xx robots.txt (e.g. 404) allows everything; 2xx is parsed."""
        parser = RobotFileParser()
        if 400 <= status < 500:
            parser.parse(["User-agent: *", "Allow: /"])
            return cls(parser)
        lines = text.splitlines()
        parser.parse(lines)
        return cls(parser, content_signals(lines))

    def allows(self, user_agent: str, url: str) -> bool:
        return self.parser.can_fetch(user_agent, url)

    def delay_s(self, user_agent: str) -> float:
        delay = self.parser.crawl_delay(user_agent)
        rate = self.parser.request_rate(user_agent)
        from_rate = rate.seconds / rate.requests if rate and rate.requests else 0.0
        return max(float(delay or 0.0), from_rate)


def content_signals(lines: list[str]) -> dict[str, str]:
    """``Content-Signal: search=yes, ai-train=no`` lines → ``{"search": "yes", ...}``."""
    signals: dict[str, str] = {}
    for line in lines:
        name, _, value = line.partition(":")
        if name.strip().lower() != "content-signal":
            continue
        for pair in value.split("#", 1)[0].split(","):
            key, sep, setting = pair.partition("=")
            if sep:
                signals[key.strip().lower()] = setting.strip().lower()
    return signals


def backoff_s(attempt: int, base_s: float, max_s: float, rng: random.Random) -> float:
    """Exponential backoff with 'equal jitter': half fixed, half random."""
    ceiling = min(max_s, base_s * 2**attempt)
    return ceiling / 2 + rng.uniform(0, ceiling / 2)


def retry_after_s(value: str | None) -> float | None:
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def block_marker(text: str, markers: list[str]) -> str | None:
    head = text[:20000]
    return next((marker for marker in markers if marker and marker in head), None)


def is_html(reply: Reply) -> bool:
    start = reply.text.lstrip()[:100].lower()
    return "html" in reply.content_type.lower() or start.startswith(("<!doctype", "<html"))


class Gate:
    """Robots, rate limit, breaker, retries and answer checks for one source's requests."""

    def __init__(
        self,
        source: str,
        options: CrawlSettings,
        fetch_robots: Callable[[str], Reply],
        rng: random.Random | None = None,
    ) -> None:
        self.source = source
        self.options = options
        self.breaker = CircuitBreaker(options.breaker_threshold, options.breaker_cooldown_s)
        self.requests = 0
        self._fetch_robots = fetch_robots
        self._robots: dict[str, RobotsRules] = {}
        self._slowdown: dict[str, float] = {}
        self._rng = rng or random.Random()

    # -- robots.txt ------------------------------------------------------------------

    def robots(self, url: str) -> RobotsRules:
        host = host_of(url)
        rules = self._robots.get(host)
        if rules and time.monotonic() - rules.fetched_at < self.options.robots_ttl_s:
            return rules
        robots_url = f"{host}/robots.txt"
        reply = self._attempts(robots_url, lambda: self._fetch_robots(robots_url), "robots")
        rules = RobotsRules.from_reply(reply.status, reply.text)
        self._robots[host] = rules
        if rules.signals:
            log.info("%s robots.txt content signals: %s", host, rules.signals)
        return rules

    def check_robots(self, url: str) -> None:
        agent = self.options.user_agent
        if not self.robots(url).allows(agent, url):
            raise CrawlerError(
                self.source,
                url,
                f"robots.txt disallows this URL for user agent {agent.split('/')[0]!r}",
                kind="robots",
                hint="The crawler obeys robots.txt, so nothing was fetched from this path.",
            )

    # -- requests --------------------------------------------------------------------

    def request(self, url: str, send: Callable[[], Reply], expect: Expect) -> Reply:
        """Send (with retries) once robots.txt allows ``url``; return the checked reply."""
        self.check_robots(url)
        return self._attempts(url, send, expect)

    def wait_turn(self, url: str) -> None:
        """Block until the host may be asked again (also used before browser scrolls)."""
        host = host_of(url)
        remaining = self.breaker.remaining_s(host)
        if remaining > 0:
            raise CrawlerError(
                self.source,
                url,
                f"circuit breaker open after {self.breaker.threshold} consecutive failures "
                f"at {host}",
                kind="breaker_open",
                hint=f"Nothing more is sent there for {remaining:.0f} s; try again later.",
            )
        interval = HEADROOM / self.options.rate_limit_per_s * self._slowdown.get(host, 1.0)
        rules = self._robots.get(host)
        if rules:
            interval = max(interval, rules.delay_s(self.options.user_agent))
        RATE_LIMITER.wait(host, interval)
        self.requests += 1

    def _attempts(self, url: str, send: Callable[[], Reply], expect: Expect | str) -> Reply:
        host = host_of(url)
        last: _Retryable | None = None
        for attempt in range(self.options.max_retries + 1):
            if attempt:
                assert last is not None
                delay = backoff_s(
                    attempt - 1, self.options.backoff_base_s, self.options.backoff_max_s, self._rng
                )
                if last.retry_after_s is not None:
                    delay = max(delay, min(last.retry_after_s, self.options.backoff_max_s))
                log.warning(
                    "%s: %s at %s; retry %d/%d in %.2f s",
                    self.source,
                    last.problem,
                    url,
                    attempt,
                    self.options.max_retries,
                    delay,
                )
                time.sleep(delay)
            self.wait_turn(url)
            try:
                reply = self.inspect(url, self._send(send), expect)
            except _Retryable as retryable:
                self.breaker.record_failure(host)
                if retryable.kind == "rate_limited":
                    self._slowdown[host] = min(MAX_SLOWDOWN, self._slowdown.get(host, 1.0) * 2)
                last = retryable
                continue
            except CrawlerError as error:
                if error.kind in ("blocked", "schema"):
                    self.breaker.record_failure(host)
                raise
            self.breaker.record_success(host)
            return reply
        assert last is not None
        kind = "robots" if expect == "robots" else last.kind
        hint = (
            "robots.txt could not be read, so (RFC 9309) the whole site counts as disallowed."
            if expect == "robots"
            else "The site may be overloaded or rate limiting; try again later."
        )
        raise CrawlerError(
            self.source,
            url,
            f"gave up after {self.options.max_retries + 1} attempts (last: {last.problem})",
            kind=kind,
            hint=hint,
        )

    def check(self, url: str, reply: Reply, expect: Expect) -> Reply:
        """Check a reply to a request someone else sent (the page's own script): no retry."""
        host = host_of(url)
        try:
            checked = self.inspect(url, reply, expect)
        except _Retryable as retryable:
            self.breaker.record_failure(host)
            raise CrawlerError(
                self.source,
                url,
                retryable.problem,
                kind=retryable.kind,
                hint="The page's own request failed, so the crawl stopped; try again later.",
            ) from None
        except CrawlerError as error:
            if error.kind in ("blocked", "schema"):
                self.breaker.record_failure(host)
            raise
        self.breaker.record_success(host)
        return checked

    def cached_robots(self, url: str) -> RobotsRules | None:
        return self._robots.get(host_of(url))

    @staticmethod
    def _send(send: Callable[[], Reply]) -> Reply:
        try:
            return send()
        except TransientError as error:
            raise _Retryable(error.kind, str(error)) from error

    def inspect(self, url: str, reply: Reply, expect: Expect | str) -> Reply:
        """Raise for block pages, errors and wrong content; parse JSON when expected."""
        status = reply.status
        if status == 429:
            raise _Retryable("rate_limited", "HTTP 429", retry_after_s(reply.retry_after))
        if status >= 500:
            raise _Retryable("server", f"HTTP {status}", retry_after_s(reply.retry_after))
        marker = block_marker(reply.text, self.options.block_markers) if is_html(reply) else None
        if status in (401, 403) or marker:
            what = f"marker {marker!r}" if marker else "no marker"
            raise CrawlerError(
                self.source,
                url,
                f"blocked by the site (HTTP {status}, {what})",
                kind="blocked",
                hint="Stopped without storing anything from this run. Do not work around a "
                "block: wait (hours) before trying again, or ask the site for access.",
            )
        if expect == "robots":
            return reply
        if status >= 400:
            raise CrawlerError(self.source, url, f"HTTP {status}", kind="http")
        if expect != "json":
            return reply
        if is_html(reply) or "json" not in reply.content_type.lower():
            raise CrawlerError(
                self.source,
                url,
                f"expected JSON but got {reply.content_type or 'no content type'} "
                f"starting {reply.text.strip()[:60]!r}",
                kind="schema",
                hint="The site may have changed or put a check page in front; nothing from "
                "this response was stored.",
            )
        try:
            reply.data = json.loads(reply.text)
        except json.JSONDecodeError as error:
            raise CrawlerError(
                self.source, url, f"response is not valid JSON ({error})", kind="schema"
            ) from error
        return reply
