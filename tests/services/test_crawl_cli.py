"""``cinesense crawl …`` commands against the fake site, and the fake site as a program."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from cinesense.cli import app
from cinesense.config import get_settings
from cinesense.crawl.fakesite import FakeSite
from tests.servers import free_port

MOVIE = "26000100"


@pytest.fixture
def site() -> Iterator[FakeSite]:
    with FakeSite() as fake:
        yield fake


@pytest.fixture
def cli(tmp_path: Path, site: FakeSite, monkeypatch: pytest.MonkeyPatch) -> Iterator[CliRunner]:
    for name, value in {
        "CINESENSE_HOME": str(tmp_path),
        "CINESENSE_CRAWL__MEGABOX__BASE_URL": site.url,
        "CINESENSE_CRAWL__CGV__BASE_URL": site.url,
        "CINESENSE_CRAWL__RATE_LIMIT_PER_S": "500",
        "CINESENSE_CRAWL__BACKOFF_BASE_S": "0.01",
        "CINESENSE_CRAWL__MAX_RETRIES": "1",
    }.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    yield CliRunner()
    get_settings.cache_clear()


def invoke(runner: CliRunner, *args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["crawl", *args])
    return result.exit_code, result.stdout, result.stderr


def test_crawl_commands_end_to_end(cli: CliRunner, site: FakeSite, tmp_path: Path) -> None:
    code, out, _ = invoke(cli, "now-showing", "--source", "megabox")
    assert code == 0 and [m["movie_id"] for m in json.loads(out)] == [
        "26000100",
        "26000200",
        "26000300",
    ]

    code, out, err = invoke(
        cli, "movie", "--source", "megabox", "--movie-id", MOVIE, "--max-reviews", "20"
    )
    assert code == 0, err
    summary = json.loads(out)
    assert (summary["new"], summary["stopped"], summary["allow_training"]) == (
        20,
        "max_reviews",
        True,
    )
    assert "20/20" in err  # the progress bar

    code, out, err = invoke(
        cli, "now-showing", "--source", "megabox", "--crawl", "--max-reviews", "5"
    )
    assert code == 0, err
    crawled = {m["movie_id"]: m["new"] for m in json.loads(out)["movies"]}
    assert crawled == {"26000100": 5, "26000200": 5, "26000300": 0}

    code, out, _ = invoke(cli, "list")
    assert code == 0 and "푸른 항구의 여름" in out and " 25 " in out

    export = tmp_path / "out/reviews.csv"
    code, out, _ = invoke(cli, "reviews", "--source", "megabox", "--out", str(export))
    assert code == 0 and "30 review(s) written" in out
    assert len(pd.read_csv(export)) == 30

    code, out, _ = invoke(cli, "reviews", "--movie-id", MOVIE, "--limit", "2")
    assert code == 0 and out.startswith("25 review(s)")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("movie", "--source", "megabox", "--movie-id", "../x"), "invalid movie id '../x'"),
        (("movie", "--source", "naver", "--movie-id", "1"), "unknown source 'naver'"),
        (("reviews", "--out", "reviews.txt"), "use a .parquet or .csv file name"),
        (("movie", "--source", "megabox", "--movie-id", MOVIE), "blocked by the site"),
    ],
)
def test_bad_input_and_blocks_are_clear_errors(
    cli: CliRunner, site: FakeSite, args: tuple[str, ...], message: str
) -> None:
    site.faults.block = True
    code, out, err = invoke(cli, *args)
    assert code == 1 and message in err
    assert "Traceback" not in out + err


def test_the_fake_site_runs_as_a_program() -> None:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "cinesense.crawl.fakesite", "--port", str(port)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        assert f"http://127.0.0.1:{port}" in first
        robots = urllib.request.urlopen(f"http://127.0.0.1:{port}/robots.txt", timeout=5)
        assert robots.read().startswith(b"User-agent: *")
    finally:
        process.terminate()
        process.wait(timeout=10)
        if process.stdout:
            process.stdout.close()


def test_fake_site_reports_a_taken_port() -> None:
    with FakeSite() as taken:
        port = taken.url.rsplit(":", 1)[1]
        result = subprocess.run(
            [sys.executable, "-m", "cinesense.crawl.fakesite", "--port", port],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    assert result.returncode == 1 and "try another --port" in result.stderr
    assert "Traceback" not in result.stderr
