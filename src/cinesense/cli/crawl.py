"""``cinesense crawl …``: crawl reviews, list what is stored, run the fake site.

Imports stay light here; crawling code is imported when a command runs.
"""

from __future__ import annotations

import sys
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from cinesense.cli.common import echo_json, friendly_errors, load_settings

if TYPE_CHECKING:
    from cinesense.crawl.jobs import CrawlProgress, CrawlResult

app = typer.Typer(
    no_args_is_help=True,
    help="Crawl Megabox and CGV reviews into the review store (politely: robots.txt, "
    "rate limit, backoff), list and read what is stored.",
)
SourceOpt = Annotated[str, typer.Option("--source", "-s", help="megabox or cgv.")]
MaxReviewsOpt = Annotated[
    int | None, typer.Option(min=1, help="Stop after this many new reviews (per movie).")
]


class _Bar:
    """A tqdm progress bar over new reviews for one movie at a time."""

    def __init__(self, max_reviews: int | None) -> None:
        self.max_reviews = max_reviews
        self.bar: Any = None

    def start(self, label: str) -> None:
        from tqdm import tqdm

        self.close()
        self.bar = tqdm(total=self.max_reviews, desc=label, unit="review", file=sys.stderr)

    def __call__(self, progress: CrawlProgress) -> None:
        if self.bar is None:
            self.start(progress.movie_id)
        if self.max_reviews is None and progress.total:
            self.bar.total = progress.total
        self.bar.n = progress.new
        self.bar.set_postfix(known=progress.duplicate, pages=progress.pages, refresh=False)
        self.bar.refresh()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _summary(result: CrawlResult) -> dict[str, object]:
    return {
        "source": result.source,
        "movie_id": result.movie_id,
        "title": result.title,
        "new": result.new,
        "duplicate": result.duplicate,
        "dropped": result.dropped,
        "pages": result.pages,
        "requests": result.requests,
        "stopped": result.stopped,
        "complete": result.complete,
        "allow_training": result.allow_training,
        "seconds": result.seconds,
    }


@app.command("movie")
@friendly_errors
def crawl_movie_command(
    source: SourceOpt,
    movie_id: Annotated[str, typer.Option(help="The site's movie id (see now-showing).")],
    max_reviews: MaxReviewsOpt = None,
    title: Annotated[str, typer.Option(help="Title to record (CGV pages do not say).")] = "",
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
) -> None:
    """Crawl one movie's reviews into the store (incremental: only new ones are added)."""
    from cinesense.crawl.jobs import crawl_movie

    settings = load_settings(torch_threads=False)
    bar = _Bar(max_reviews)
    try:
        result = crawl_movie(
            settings,
            source,
            movie_id,
            max_reviews=max_reviews,
            title=title,
            progress=bar if progress else None,
        )
    finally:
        bar.close()
    echo_json(_summary(result))


@app.command("now-showing")
@friendly_errors
def now_showing_command(
    source: SourceOpt,
    crawl: Annotated[
        bool, typer.Option("--crawl", help="Crawl each movie's reviews, not only list them.")
    ] = False,
    max_reviews: MaxReviewsOpt = None,
    max_movies: Annotated[int | None, typer.Option(min=1, help="Crawl at most this many.")] = None,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
) -> None:
    """List the movies now showing at a source; with --crawl, crawl their reviews too."""
    from cinesense.crawl.jobs import crawl_now_showing, now_showing

    settings = load_settings(torch_threads=False)
    if not crawl:
        movies = now_showing(settings, source)
        echo_json([asdict(movie) for movie in movies[:max_movies]])
        return
    bar = _Bar(max_reviews)
    try:
        result = crawl_now_showing(
            settings,
            source,
            max_reviews=max_reviews,
            max_movies=max_movies,
            progress=bar if progress else None,
            on_movie=(lambda movie: bar.start(f"{movie.movie_id} {movie.title}"))
            if progress
            else None,
        )
    finally:
        bar.close()
    echo_json({"movies": [_summary(r) for r in result.movies], "failures": result.failures})
    if result.failures:
        from cinesense.errors import CrawlerError

        reason = result.stopped_early or next(iter(result.failures.values()))
        raise CrawlerError(
            source,
            settings.crawl.megabox.base_url if source == "megabox" else settings.crawl.cgv.base_url,
            f"{len(result.failures)} movie(s) failed; first: {reason}",
            kind="http",
        )


@app.command("search")
@friendly_errors
def search_command(title: Annotated[str, typer.Argument(help="Part of a title.")]) -> None:
    """Search Megabox movies by title (showing or not)."""
    from cinesense.crawl.jobs import search_movies

    echo_json([asdict(movie) for movie in search_movies(load_settings(torch_threads=False), title)])


@app.command("list")
@friendly_errors
def list_command(
    source: Annotated[str | None, typer.Option("--source", "-s", help="Only this source.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON instead of a table.")] = False,
) -> None:
    """Stored movies with their review counts."""
    from cinesense.crawl.jobs import list_movies

    movies = list_movies(load_settings(torch_threads=False), source)
    if as_json:
        echo_json(movies.to_dict(orient="records"))
    elif movies.empty:
        typer.echo("No reviews stored yet; try `cinesense crawl movie --source megabox …`.")
    else:
        shown = movies.assign(
            newest_review_at=movies["newest_review_at"].astype(str).str[:16],
            last_crawled_at=movies["last_crawled_at"].astype(str).str[:16],
        )
        typer.echo(shown.to_string(index=False))


@app.command("reviews")
@friendly_errors
def reviews_command(
    source: Annotated[str | None, typer.Option("--source", "-s", help="Only this source.")] = None,
    movie_id: Annotated[str | None, typer.Option(help="Only this movie.")] = None,
    out: Annotated[
        Path | None, typer.Option(help="Write all of them to .parquet or .csv instead.")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, help="Rows to print.")] = 10,
) -> None:
    """Print (or export) stored reviews, newest first."""
    from cinesense.crawl.jobs import read_reviews
    from cinesense.errors import DataError

    frame = read_reviews(load_settings(torch_threads=False), source, movie_id)
    if out is None:
        columns = ["source", "movie_id", "rating", "label", "created_at", "text"]
        typer.echo(f"{len(frame)} review(s)")
        if len(frame):
            typer.echo(frame[columns].head(limit).to_string(index=False))
        return
    if out.suffix not in (".parquet", ".csv"):
        raise DataError(f"--out {out}: use a .parquet or .csv file name.")
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix == ".parquet":
        frame.to_parquet(out, index=False)
    else:
        frame.to_csv(out, index=False)
    typer.echo(f"{len(frame)} review(s) written to {out}")


@app.command("canary")
@friendly_errors
def canary_command(
    movie_id: Annotated[str, typer.Option(help="A Megabox movie with reviews.")],
) -> None:
    """Drift check: Megabox's comment tab (Chromium + BeautifulSoup) against its JSON API."""
    from cinesense.crawl.jobs import megabox_canary
    from cinesense.errors import CrawlerError

    settings = load_settings(torch_threads=False)
    report = megabox_canary(settings, movie_id)
    echo_json(asdict(report) | {"ok": report.ok})
    if not report.ok:
        raise CrawlerError(
            "megabox",
            settings.crawl.megabox.base_url,
            "the comment tab and the JSON API disagree (see the problems above)",
            kind="schema",
            hint="The site's markup or API changed; review the parsers before crawling on.",
        )


@app.command("fake-site")
def fake_site_command(
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1.")] = 8765,
    reviews: Annotated[int | None, typer.Option(min=0, help="Reviews per movie.")] = None,
) -> None:
    """Run the local fake Megabox/CGV site for demos (Ctrl-C stops it)."""
    from cinesense.crawl.fakesite import main

    main(["--port", str(port), *([] if reviews is None else ["--reviews", str(reviews)])])
