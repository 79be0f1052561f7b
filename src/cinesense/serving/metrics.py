"""Prometheus metrics of one service instance (its own registry, so apps never collide)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics

disable_created_metrics()  # the *_created series only add noise to every scrape

LATENCY_BUCKETS = (0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


class ServiceMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "cinesense_http_requests",
            "HTTP requests by route, method and status.",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "cinesense_http_request_duration_seconds",
            "HTTP request latency by route.",
            ["route", "method"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.batch_size = Histogram(
            "cinesense_batch_size",
            "Texts per model call (micro-batch).",
            buckets=BATCH_BUCKETS,
            registry=self.registry,
        )
        self.predictions = Counter(
            "cinesense_predictions", "Predictions by label.", ["label"], registry=self.registry
        )
        self.model_info = Gauge(
            "cinesense_model_info",
            "The served model version (value 1).",
            ["version", "quantization"],
            registry=self.registry,
        )
        self.model_ready = Gauge(
            "cinesense_model_ready", "1 when a model is loaded.", registry=self.registry
        )
        self.load_failures = Gauge(
            "cinesense_model_load_failures", "Failed model loads so far.", registry=self.registry
        )

    def model_changed(self, version: str | None, quantization: str | None, failures: int) -> None:
        self.model_info.clear()
        if version is not None:
            self.model_info.labels(version=version, quantization=quantization or "").set(1)
        self.model_ready.set(1 if version is not None else 0)
        self.load_failures.set(failures)
