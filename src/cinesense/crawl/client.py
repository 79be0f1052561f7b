"""The plain-HTTP route (httpx) behind a :class:`~cinesense.crawl.politeness.Gate`."""

from __future__ import annotations

import random
from typing import Any

import httpx

from cinesense.config import CrawlSettings
from cinesense.crawl.politeness import Expect, Gate, Reply, TransientError


class PoliteClient:
    """An httpx client that only sends through the gate: robots, rate limit, retries…

    ``transport`` lets tests or callers plug in another httpx transport.
    """

    def __init__(
        self,
        source: str,
        options: CrawlSettings,
        *,
        transport: httpx.BaseTransport | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.options = options
        self._http = httpx.Client(
            headers={"User-Agent": options.user_agent, "Accept-Language": "ko-KR,ko;q=0.9"},
            timeout=httpx.Timeout(options.read_timeout_s, connect=options.connect_timeout_s),
            follow_redirects=True,
            transport=transport,
        )
        self.gate = Gate(source, options, self._robots_reply, rng)

    def __enter__(self) -> PoliteClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    @property
    def requests(self) -> int:
        return self.gate.requests

    def content_signals(self, url: str) -> dict[str, str]:
        """The robots.txt content signals of ``url``'s host (fetched if needed)."""
        return self.gate.robots(url).signals

    def get_json(self, url: str, **kwargs: Any) -> Any:
        return self.request("GET", url, "json", **kwargs).data

    def post_json(self, url: str, body: dict[str, Any], **kwargs: Any) -> Any:
        return self.request("POST", url, "json", json=body, **kwargs).data

    def get_text(self, url: str, **kwargs: Any) -> str:
        return self.request("GET", url, "text", **kwargs).text

    def request(self, method: str, url: str, expect: Expect, **kwargs: Any) -> Reply:
        return self.gate.request(url, lambda: self._send(method, url, **kwargs), expect)

    def _robots_reply(self, url: str) -> Reply:
        return self._send("GET", url, headers={"Accept": "text/plain"})

    def _send(self, method: str, url: str, **kwargs: Any) -> Reply:
        try:
            response = self._http.request(method, url, **kwargs)
        except httpx.TimeoutException as error:
            raise TransientError("timeout", f"timed out ({type(error).__name__})") from error
        except httpx.TransportError as error:
            raise TransientError("connection", f"connection failed ({error})") from error
        return Reply(
            status=response.status_code,
            content_type=response.headers.get("content-type", ""),
            text=response.text,
            retry_after=response.headers.get("retry-after"),
        )
