"""The now-showing lists, kept in the store for the UI's movie search.

Every crawl that reads a site's now-showing list (the ``crawl_reviews`` DAG) saves it
here, so searching it costs the sites nothing: the service reads the saved lists and
never crawls (CGV's list needs a real browser). A list says when it was read.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from cinesense.crawl.records import SOURCES, Movie
from cinesense.storage import ObjectStore

CATALOG = "catalog/now_showing"


def save_listing(objects: ObjectStore, source: str, movies: Sequence[Movie]) -> None:
    listing = {
        "source": source,
        "fetched_at": datetime.now(UTC).isoformat(),
        "movies": [asdict(movie) for movie in movies],
    }
    objects.put_bytes(f"{CATALOG}/{source}.json", json.dumps(listing, ensure_ascii=False).encode())


def read_listings(objects: ObjectStore) -> dict[str, dict[str, Any]]:
    """The saved list of each source that has one."""
    listings = {}
    for source in SOURCES:
        key = f"{CATALOG}/{source}.json"
        if objects.exists(key):
            listings[source] = json.loads(objects.get_bytes(key))
    return listings


def search(
    listings: dict[str, dict[str, Any]], query: str = "", source: str | None = None
) -> list[dict[str, Any]]:
    """Movies whose title holds ``query`` (spaces and case ignored), by source and rank."""
    wanted = _folded(query)
    found = [
        movie
        for name, listing in listings.items()
        if source in (None, name)
        for movie in listing["movies"]
        if wanted in _folded(movie["title"])
    ]
    return sorted(found, key=lambda m: (m["source"], m["rank"] is None, m["rank"] or 0))


def _folded(text: str) -> str:
    return "".join(text.split()).casefold()
