"""One pure-ASGI middleware for every request: request id, Prometheus metrics, a log line.

(Starlette's ``BaseHTTPMiddleware`` would do the same with a noticeable cost per request.)
"""

from __future__ import annotations

import logging
import time
from typing import Any

from cinesense.serving.logs import new_request_id, request_id
from cinesense.serving.metrics import ServiceMetrics

log = logging.getLogger("cinesense.serving")
Scope = dict[str, Any]


class ObserveRequests:
    def __init__(self, app: Any, metrics: ServiceMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        offered = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        rid = new_request_id(offered or None)
        token = request_id.set(rid)
        status = 500

        async def send_with_id(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), (b"x-request-id", rid.encode())]
            await send(message)

        started = time.perf_counter()
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            route = getattr(scope.get("route"), "path", "unmatched")  # set by the router
            method = scope["method"]
            self.metrics.requests.labels(route, method, str(status)).inc()
            self.metrics.latency.labels(route, method).observe(elapsed)
            log.info(
                "request",
                extra={
                    "method": method,
                    "route": route,
                    "status": status,
                    "duration_ms": round(elapsed * 1000, 2),
                },
            )
            request_id.reset(token)
