"""Shared pieces of the crawl tests: the fake site fixture, fast settings, store checks."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

from cinesense.config import CgvSettings, CrawlSettings, MegaboxSettings, Settings
from cinesense.crawl.jobs import read_reviews, review_store
from cinesense.storage import LocalStore

# Fast but real: every politeness mechanism is on, with tiny intervals and waits.
FAST = dict(
    rate_limit_per_s=500.0,
    connect_timeout_s=2.0,
    read_timeout_s=2.0,
    max_retries=2,
    backoff_base_s=0.01,
    backoff_max_s=0.05,
    breaker_threshold=20,
    breaker_cooldown_s=60.0,
)


def crawl_settings(
    home: Path,
    site_url: str,
    megabox: dict[str, object] | None = None,
    cgv: dict[str, object] | None = None,
    **crawl: object,
) -> Settings:
    options = {**FAST, **crawl}
    return Settings(
        home=home,
        environment="test",
        crawl=CrawlSettings(
            **options,  # type: ignore[arg-type]
            megabox=MegaboxSettings(**{"base_url": site_url, **(megabox or {})}),  # type: ignore[arg-type]
            cgv=CgvSettings(**{"base_url": site_url, "scroll_wait_s": 1.5, **(cgv or {})}),  # type: ignore[arg-type]
        ),
    )


def storage_files(settings: Settings) -> list[Path]:
    root = settings.home / "storage"
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def assert_store_consistent(settings: Settings) -> None:
    """No temp or orphan files, every manifest's parts readable, one row per review."""
    files = storage_files(settings)
    assert not [p for p in files if p.name.startswith(".tmp-")], files
    store = review_store(settings)
    referenced = set()
    for manifest in store.manifests():
        assert manifest.review_count == sum(part.rows for part in manifest.parts)
        for part in manifest.parts:
            referenced.update({part.key, part.raw_key})
            pages = gzip.decompress(store.objects.get_bytes(part.raw_key)).decode().splitlines()
            assert all(json.loads(line)["payload"] for line in pages)
    data_keys = {
        key
        for key in LocalStore(settings.home / "storage").list()
        if "/parsed/" in key or "/raw/" in key
    }
    assert data_keys == referenced, "orphan parts left behind"
    frame = read_reviews(settings)
    assert not frame.duplicated(["source", "review_id"]).any()


def stored_bytes(settings: Settings) -> dict[str, bytes]:
    return {str(p): p.read_bytes() for p in storage_files(settings)}
