"""The analysis app through nginx on loopback, in Debian's Chromium (Playwright):

* ``page_ready_s`` — a fresh browser opens ``/`` until the review box is interactive
  (median of 5 fresh browser contexts; the first, cold one is reported too);
* ``analyze_1000_s`` — 1,000 pasted reviews, from the click to the results shown;
* ``csv_10000_s`` — a 10,000-row CSV (CP949), from the click to the results shown
  (sent in chunks with a progress bar).

The stack is the tests' (tests/ui_stack.py): uvicorn serving a bundle, Streamlit, nginx;
the service is warmed up first with one /v1/analyze call of 300 reviews, as a running
service is (KoNLPy's first calls in a fresh JVM are several times slower).
Default bundle: the shipped default model when present, else ``--bundle DIR``.

    .venv/bin/python benchmarks/ui_benchmark.py --bundle path/to/serving-bundle
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import pandas as pd  # noqa: E402
from results import update_markdown, write_entry  # noqa: E402
from tests.ui_stack import api_server, nginx_server, streamlit_server  # noqa: E402

from cinesense.client import CinesenseClient  # noqa: E402
from cinesense.config import CrawlSettings  # noqa: E402
from cinesense.data.corpus import read_corpus, sample_corpus_path  # noqa: E402

TIMEOUT_MS = 300_000


def reviews(count: int) -> list[str]:
    texts = read_corpus(sample_corpus_path())["text"].astype(str).tolist()
    return [texts[i % len(texts)].replace("\n", " ") for i in range(count)]


def default_bundle() -> Path | None:
    shipped = ROOT / "src/cinesense/default_model"
    return shipped if (shipped / "manifest.json").exists() else None


def page_ready(browser, url: str, repeats: int = 5) -> list[float]:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(repeats):
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        start = time.perf_counter()
        page.goto(url + "/")
        box = page.get_by_label("리뷰 (한 줄에 하나)")
        box.wait_for()
        box.fill("준비")  # interactive: it takes input
        times.append(time.perf_counter() - start)
        context.close()
    return times


def analyze_pasted(browser, url: str, count: int) -> float:  # type: ignore[no-untyped-def]
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(url + "/")
    page.get_by_label("리뷰 (한 줄에 하나)").fill("\n".join(reviews(count)))
    start = time.perf_counter()
    page.get_by_role("button", name="분석하기").click()
    page.get_by_text("리뷰별 결과").wait_for()
    page.get_by_test_id("stMetricValue").filter(has_text=f"{count:,}").first.wait_for()
    elapsed = time.perf_counter() - start
    context.close()
    return elapsed


def analyze_csv(browser, url: str, count: int, folder: Path) -> float:  # type: ignore[no-untyped-def]
    path = folder / "reviews.csv"
    ratings = [(i % 10) + 1 for i in range(count)]
    frame = pd.DataFrame({"리뷰": reviews(count), "평점": ratings})
    path.write_bytes(frame.to_csv(index=False).encode("cp949", errors="replace"))
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(url + "/")
    page.get_by_role("tab", name="파일 업로드").click()
    page.locator("input[type=file]").set_input_files(str(path))
    page.get_by_role("button", name="파일 분석하기").wait_for()
    start = time.perf_counter()
    page.get_by_role("button", name="파일 분석하기").click()
    page.get_by_text("리뷰별 결과").wait_for()
    page.get_by_test_id("stMetricValue").filter(has_text=f"{count:,}").first.wait_for()
    elapsed = time.perf_counter() - start
    context.close()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", type=Path, default=default_bundle())
    args = parser.parse_args()
    if args.bundle is None:
        parser.error("no shipped default model yet: pass --bundle DIR (a serving bundle)")
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as scratch, ExitStack() as stack:
        home = Path(scratch)
        api = stack.enter_context(api_server(home, args.bundle.resolve(), home / "api.log"))
        ui = stack.enter_context(streamlit_server(api, home / "streamlit.log"))
        door = stack.enter_context(nginx_server(home / "nginx", ui, api))
        playwright = stack.enter_context(sync_playwright())
        browser = playwright.chromium.launch(
            executable_path=CrawlSettings().chromium_path, headless=True
        )
        with CinesenseClient(api) as client:  # a running service has analysed before
            client.analyze([{"text": text} for text in reviews(300)])
        ready = page_ready(browser, door)
        analyze_1000 = analyze_pasted(browser, door, 1000)
        csv_10000 = analyze_csv(browser, door, 10_000, home)
        browser.close()
    metrics = {
        "page_ready_s": round(statistics.median(ready), 2),
        "page_ready_cold_s": round(ready[0], 2),
        "analyze_1000_s": round(analyze_1000, 2),
        "csv_10000_s": round(csv_10000, 2),
    }
    write_entry("ui", metrics)
    bundle = args.bundle.resolve()
    shown = bundle.relative_to(ROOT) if bundle.is_relative_to(ROOT) else bundle.name
    update_markdown(
        "ui",
        [
            f"## ui — {time.strftime('%Y-%m-%d')}",
            "",
            f"Through nginx on loopback in headless Chromium, bundle `{shown}`, load "
            f"average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs at the end:",
            "",
            "| metric | seconds | target |",
            "|---|---|---|",
            f"| first page interactive, fresh browser (median of 5) | {metrics['page_ready_s']} "
            "| ≤ 3 |",
            f"| first page, the very first (cold) load | {metrics['page_ready_cold_s']} | — |",
            f"| 1,000 pasted reviews analysed and shown | {metrics['analyze_1000_s']} | ≤ 5 |",
            f"| 10,000-row CSV analysed and shown | {metrics['csv_10000_s']} | ≤ 30 |",
        ],
    )
    print(metrics)


if __name__ == "__main__":
    main()
