"""Review crawlers for Megabox (HTTP JSON) and CGV (headless Chromium), and the review store.

The functions other parts of the platform call live in :mod:`cinesense.crawl.jobs` and
are re-exported here (imported on first use, so ``import cinesense.crawl`` stays light):
``now_showing``, ``search_movies``, ``crawl_movie``, ``crawl_now_showing``,
``crawl_sources``, ``read_reviews``, ``list_movies``, ``as_corpus``, ``megabox_canary``.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "as_corpus",
    "crawl_movie",
    "crawl_now_showing",
    "crawl_sources",
    "list_movies",
    "megabox_canary",
    "now_showing",
    "read_reviews",
    "search_movies",
]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from cinesense.crawl import jobs

        return getattr(jobs, name)
    raise AttributeError(f"module 'cinesense.crawl' has no attribute {name!r}")
