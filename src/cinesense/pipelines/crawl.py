"""Stage *crawl*: crawl targets, one movie's crawl (with a per-run stop marker for a source
that blocked us), the crawl summary. The crawlers themselves live in :mod:`cinesense.crawl`."""

from __future__ import annotations

import json
import logging
from dataclasses import asdict
from typing import Any

from cinesense.config import Settings
from cinesense.errors import CinesenseError, CrawlerError
from cinesense.files import safe_name
from cinesense.storage import open_store

log = logging.getLogger(__name__)

CRAWL_STOPS = "pipelines/crawl_stops"


def list_crawl_targets(
    settings: Settings,
    sources: list[str],
    max_movies: int | None = None,
    only: list[dict[str, str]] | None = None,
) -> dict[str, Any]:
    """Movies now showing per source (``max_movies`` each) as crawl targets; a source
    whose list cannot be read is reported in ``failures`` while the others go on.
    ``only`` — chosen movies (``source``, ``movie_id``, optional ``title``), such as the
    UI's "최신 리뷰 가져오기" sends — replaces the lists, for the chosen sources."""
    from cinesense.crawl.jobs import now_showing

    if only:
        chosen = [
            {"source": m["source"], "movie_id": m["movie_id"], "title": m.get("title", "")}
            for m in only
            if m["source"] in sources
        ]
        return {"movies": chosen, "failures": {}}
    movies: list[dict[str, str]] = []
    failures: dict[str, str] = {}
    for source in sources:
        try:
            showing = now_showing(settings, source)
        except CrawlerError as error:
            log.error("%s", error)
            failures[source] = str(error)
            continue
        _keep_listing(settings, source, showing)
        listed = showing[:max_movies]
        log.info("%s: %d movies now showing to crawl", source, len(listed))
        movies.extend({"source": source, "movie_id": m.movie_id, "title": m.title} for m in listed)
    return {"movies": movies, "failures": failures}


def _keep_listing(settings: Settings, source: str, showing: list[Any]) -> None:
    """Save the list for the UI's search; the crawl goes on if the store refuses it."""
    from cinesense.crawl.catalog import save_listing

    try:
        save_listing(open_store(settings), source, showing)
    except CinesenseError as error:
        log.warning("%s: the now-showing list was not saved for search: %s", source, error)


def crawl_target(
    settings: Settings,
    source: str,
    movie_id: str,
    title: str = "",
    max_reviews: int | None = None,
    stop_scope: str | None = None,
) -> dict[str, Any]:
    """Crawl one movie into the review store; its counts.

    With ``stop_scope`` (a crawl run's id) a source that blocked us, opened its circuit
    breaker or rate-limited us is not asked again in that run: the first such error
    leaves a marker, and later movies of the source stop before sending a request.
    """
    from cinesense.crawl.jobs import STOPS_SOURCE, crawl_movie

    objects = open_store(settings)
    marker = f"{CRAWL_STOPS}/{safe_name(stop_scope)}/{source}.json" if stop_scope else None
    if marker and objects.exists(marker):
        reason = json.loads(objects.get_bytes(marker))["reason"]
        problem = f"not tried: the source stopped this run earlier ({reason})"
        raise CrawlerError(source, "-", problem, kind="stopped")
    try:
        result = crawl_movie(
            settings, source, movie_id, max_reviews=max_reviews, title=title, store=objects
        )
    except CrawlerError as error:
        if marker and error.kind in STOPS_SOURCE:
            objects.put_bytes(marker, json.dumps({"reason": str(error)}).encode())
        raise
    summary = asdict(result)
    summary.pop("dropped", None)
    return summary


def summarize_crawl(
    targets: list[dict[str, Any]],
    results: list[dict[str, Any]],
    listing_failures: dict[str, str],
) -> dict[str, Any]:
    """Counts per source — movies, new and duplicate reviews, failed movies — from the
    targets and the results of the movies that finished. Raises when every attempt
    failed; an empty crawl (nothing to do) is not a failure."""
    done = {(r["source"], r["movie_id"]) for r in results}
    sources = sorted(
        {t["source"] for t in targets} | {r["source"] for r in results} | set(listing_failures)
    )
    per_source: dict[str, dict[str, Any]] = {}
    for source in sources:
        mine = [r for r in results if r["source"] == source]
        failed = sorted(
            t["movie_id"]
            for t in targets
            if t["source"] == source and (source, t["movie_id"]) not in done
        )
        per_source[source] = {
            "movies": len(mine),
            "new": sum(int(r["new"]) for r in mine),
            "duplicate": sum(int(r["duplicate"]) for r in mine),
            "failed": len(failed),
            "failed_movies": failed,
            "listing_failed": listing_failures.get(source),
        }
    attempts = len(targets) + len(listing_failures)
    failures = sum(s["failed"] for s in per_source.values()) + len(listing_failures)
    summary = {
        "sources": per_source,
        "new": sum(s["new"] for s in per_source.values()),
        "duplicate": sum(s["duplicate"] for s in per_source.values()),
        "failed": failures,
        "movies": len(results),
    }
    if attempts and failures == attempts:
        raise CinesenseError(
            f"every crawl failed ({failures} of {attempts}): "
            + "; ".join(
                f"{source}: {info['listing_failed'] or str(info['failed']) + ' movie(s)'}"
                for source, info in per_source.items()
            )
            + ". See the failed tasks' logs."
        )
    if not attempts:
        log.warning("empty crawl: no movie is showing at the chosen sources")
    return summary
