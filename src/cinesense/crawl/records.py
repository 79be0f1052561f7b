"""Review and movie records shared by every source, and their Parquet schema.

Columns follow the corpus readers where they overlap (``source``, ``review_id``,
``movie_id``, ``rating``, ``text``): ``rating`` is a 1–10 score (Megabox), ``label`` is
1/0 where the source gives a binary verdict we can read (CGV's egg, when its raw value
is mapped in the settings), ``egg_raw`` keeps that raw value. Author ids and nicknames
are never part of a record, and :func:`scrub_authors` removes them from raw payloads.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pyarrow as pa

from cinesense.errors import CrawlerError

SOURCES = ("megabox", "cgv")
KST = timezone(timedelta(hours=9), "KST")
MOVIE_ID = re.compile(r"^[A-Za-z0-9_-]{1,40}$")

# Fields that identify or describe an author in either site's payloads; never stored.
AUTHOR_FIELDS = frozenset(
    {
        "loginId",
        "mbNo",
        "profileImgPath",
        "snsNcnm",
        "UserID",
        "UserIdNicName",
        "UserSmallImage",
        "userId",
        "nickname",
        "nickName",
        "mbrNo",
        "custNo",
    }
)

REVIEW_SCHEMA = pa.schema(
    [
        ("source", pa.string()),
        ("review_id", pa.string()),
        ("movie_id", pa.string()),
        ("movie_title", pa.string()),
        ("text", pa.string()),
        ("rating", pa.int16()),
        ("label", pa.int8()),
        ("egg_raw", pa.string()),
        ("kind", pa.string()),
        ("created_at", pa.timestamp("us", tz="UTC")),
        ("likes", pa.int32()),
        ("text_hash", pa.string()),
        ("allow_training", pa.bool_()),
        ("crawled_at", pa.timestamp("us", tz="UTC")),
        ("run_id", pa.string()),
    ]
)
REVIEW_COLUMNS = REVIEW_SCHEMA.names


@dataclass(frozen=True, slots=True)
class Review:
    source: str
    review_id: str
    movie_id: str
    movie_title: str
    text: str
    rating: int | None = None
    label: int | None = None
    egg_raw: str | None = None
    kind: str | None = None  # "post_viewing" or "expectation"
    created_at: datetime | None = None
    likes: int | None = None


@dataclass(frozen=True, slots=True)
class Movie:
    source: str
    movie_id: str
    title: str
    release_date: str | None = None  # YYYYMMDD
    rank: int | None = None
    booking_rate: float | None = None


@dataclass
class ReviewPage:
    """One response of a source's review API: its records and the (scrubbed) payload."""

    url: str
    payload: Any
    reviews: list[Review]
    total: int | None = None
    dropped: dict[str, int] = field(default_factory=dict)


def check_source(source: str) -> str:
    if source not in SOURCES:
        raise CrawlerError(
            source or "(none)",
            "-",
            f"unknown source {source!r}",
            kind="input",
            hint=f"Use one of: {', '.join(SOURCES)}.",
        )
    return source


def check_movie_id(source: str, movie_id: str) -> str:
    movie_id = str(movie_id).strip()
    if not MOVIE_ID.match(movie_id):
        raise CrawlerError(
            source,
            "-",
            f"invalid movie id {movie_id!r}",
            kind="input",
            hint="A movie id is the site's number, e.g. Megabox '24036800' (rpstMovieNo) or "
            "CGV '30000286' (movNo); `cinesense crawl now-showing` lists them.",
        )
    return movie_id


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def scrub_authors(payload: Any) -> Any:
    """A copy of ``payload`` without author fields, at any depth."""
    if isinstance(payload, dict):
        return {k: scrub_authors(v) for k, v in payload.items() if k not in AUTHOR_FIELDS}
    if isinstance(payload, list):
        return [scrub_authors(item) for item in payload]
    return payload


_STAMP = re.compile(
    r"^(\d{4})[.\-/](\d{1,2})[.\-/](\d{1,2})\.?(?:[ T]+(\d{1,2}):(\d{2})(?::(\d{2}))?)?"
)


def parse_kst(value: object) -> datetime | None:
    """'2026.07.20 14:05', '2026-05-10 21:14:03', '2026.07.20' (Korean time) → UTC."""
    if not isinstance(value, str):
        return None
    match = _STAMP.match(value.strip())
    if not match:
        return None
    year, month, day, hour, minute, second = (int(g) if g else 0 for g in match.groups())
    try:
        stamp = datetime(year, month, day, hour, minute, second, tzinfo=KST)
    except ValueError:
        return None
    return stamp.astimezone(UTC)


def as_int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    return None


def reviews_to_table(
    reviews: Sequence[Review], allow_training: bool, crawled_at: datetime, run_id: str
) -> pa.Table:
    count = len(reviews)
    columns: dict[str, list[Any]] = {
        "source": [r.source for r in reviews],
        "review_id": [r.review_id for r in reviews],
        "movie_id": [r.movie_id for r in reviews],
        "movie_title": [r.movie_title for r in reviews],
        "text": [r.text for r in reviews],
        "rating": [r.rating for r in reviews],
        "label": [r.label for r in reviews],
        "egg_raw": [r.egg_raw for r in reviews],
        "kind": [r.kind for r in reviews],
        "created_at": [r.created_at for r in reviews],
        "likes": [r.likes for r in reviews],
        "text_hash": [text_hash(r.text) for r in reviews],
        "allow_training": [allow_training] * count,
        "crawled_at": [crawled_at] * count,
        "run_id": [run_id] * count,
    }
    return pa.table(columns, schema=REVIEW_SCHEMA)
