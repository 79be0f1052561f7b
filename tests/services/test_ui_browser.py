"""The analysis app as people use it: Debian's Chromium (Playwright, no browser download)
through a real nginx on loopback in front of real Streamlit and uvicorn processes, over
reviews crawled from the fake site and scored by the tiny bundle.

Screenshots of each page go to ``$CINESENSE_UI_SCREENSHOTS`` (default: the test's
temporary folder); ``docs/screenshots/`` holds copies for the README.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from cinesense.config import CrawlSettings
from cinesense.crawl.fakesite import FakeSite
from cinesense.pipelines.crawl import list_crawl_targets
from tests.crawl_support import crawl_settings
from tests.servers import free_port
from tests.ui_stack import api_server, nginx_server, populate, streamlit_server

pytestmark = pytest.mark.browser
TIMEOUT_MS = 90_000


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = os.environ.get("CINESENSE_UI_SCREENSHOTS")
    path = Path(folder) if folder else tmp_path_factory.mktemp("screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="module")
def front_door(tmp_path_factory: pytest.TempPathFactory, tiny_bundle: Path) -> Iterator[str]:
    if not shutil.which("nginx") and not Path("/usr/sbin/nginx").exists():
        pytest.skip("nginx is not installed (apt-get install nginx; .ci/run installs it)")
    home = tmp_path_factory.mktemp("ui-browser")
    with FakeSite() as site:
        settings = crawl_settings(home, site.url)
        populate(settings, site.url, tiny_bundle)
        list_crawl_targets(settings, ["megabox"], max_movies=1)  # saves the now-showing list
    with ExitStack() as stack:
        api = stack.enter_context(api_server(home, tiny_bundle, home / "api.log"))
        ui = stack.enter_context(streamlit_server(api, home / "streamlit.log"))
        yield stack.enter_context(nginx_server(home / "nginx", ui, api))


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import Error, sync_playwright

    chromium = CrawlSettings().chromium_path
    if not chromium:
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    with sync_playwright() as playwright:
        try:
            launched = playwright.chromium.launch(executable_path=chromium, headless=True)
        except Error as error:
            pytest.skip(f"headless Chromium cannot start here: {error}")
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    # Tall: Streamlit scrolls inside its own container, so a screenshot shows the viewport.
    context = browser.new_context(
        viewport={"width": 1400, "height": 3000}, locale="ko-KR", accept_downloads=True
    )
    context.set_default_timeout(TIMEOUT_MS)
    opened = context.new_page()
    yield opened
    context.close()


def settled(page: Any) -> None:
    """Wait until the script run is over and every table and chart has drawn."""
    page.get_by_role("button", name="Stop").wait_for(state="detached")
    page.wait_for_function(
        "[...document.querySelectorAll(\"[data-testid='stVegaLiteChart']\")]"
        ".every(c => c.querySelector('canvas, svg'))"
    )
    page.wait_for_timeout(500)  # the data grids paint on the next frames


def shoot(page: Any, path: Path) -> None:
    settled(page)
    page.screenshot(path=str(path))


def open_app(page: Any, url: str) -> None:
    page.goto(url)
    page.get_by_role("heading", name="리뷰 분석").wait_for()


def test_type_a_review_and_see_its_label_and_rating(
    front_door: str, page: Any, shots: Path
) -> None:
    open_app(page, front_door + "/")
    page.get_by_label("리뷰 (한 줄에 하나)").fill("배우들 연기가 정말 좋았어요 최고의 영화")
    page.get_by_role("button", name="분석하기").click()
    card = page.get_by_text("/ 10", exact=False).first
    card.wait_for()
    text = card.inner_text()
    assert any(label in text for label in ("긍정", "부정", "애매")) and "★" in text
    page.get_by_text("리뷰별 결과").wait_for()
    shoot(page, shots / "review.png")


def test_upload_a_csv_and_download_the_results(
    front_door: str, page: Any, shots: Path, tmp_path: Path
) -> None:
    reviews = [
        "정말 재밌어요 최고의 영화",
        "시간 아깝다 최악",
        "배우 연기가 좋았다",
        "지루했다",
    ] * 5
    upload = tmp_path / "리뷰.csv"
    frame = pd.DataFrame({"리뷰": reviews, "평점": [10, 1, 8, 3] * 5})
    upload.write_bytes(frame.to_csv(index=False).encode("cp949"))  # as Korean Excel saves it
    open_app(page, front_door + "/")
    page.get_by_role("tab", name="파일 업로드").click()
    page.locator("input[type=file]").set_input_files(str(upload))
    page.get_by_text("인코딩 CP949").wait_for()
    page.get_by_role("button", name="파일 분석하기").click()
    page.get_by_text("실제 평점과의 평균 절대 오차 (MAE)").wait_for()
    page.get_by_text("감성별 키워드").wait_for()
    shoot(page, shots / "review-upload.png")
    with page.expect_download() as started:
        page.get_by_role("button", name="결과 CSV 내려받기").click()
    data = Path(started.value.path()).read_bytes()
    assert data.startswith(b"\xef\xbb\xbf")  # UTF-8 BOM: Excel opens Korean correctly
    results = pd.read_csv(Path(started.value.path()), encoding="utf-8-sig")
    assert list(results["리뷰"]) == reviews
    assert (
        set(results["감성"]) <= {"긍정", "부정", "애매"} and results["AI 평점"].between(1, 10).all()
    )


def test_movie_page_with_crawled_and_scored_reviews(
    front_door: str, page: Any, shots: Path
) -> None:
    page.goto(front_door + "/movie")
    page.get_by_role("heading", name="푸른 항구의 여름").wait_for()
    page.get_by_text("날짜별 긍정·부정 비율").wait_for()
    page.get_by_text("가장 부정적인 리뷰").wait_for()
    charts = page.locator("[data-testid='stVegaLiteChart']")
    charts.first.wait_for()
    page.wait_for_function(
        "document.querySelectorAll(\"[data-testid='stVegaLiteChart'] canvas, "
        "[data-testid='stVegaLiteChart'] svg\").length >= 4"
    )
    assert charts.count() >= 4  # labels over time, ratings, keywords (positive, negative)
    shoot(page, shots / "movie.png")


def test_movie_page_searches_the_now_showing_list(front_door: str, page: Any, shots: Path) -> None:
    page.goto(front_door + "/movie")
    page.get_by_text("상영작 검색 · 새 영화 리뷰 가져오기").click()
    search = page.get_by_label("상영작 제목")
    search.fill("도서관")
    search.press("Enter")
    page.get_by_text("상영작 목록 기준 시각").wait_for()  # the pick itself: test_ui_pages
    page.get_by_role("button", name="이 영화 리뷰 가져오기").click()
    page.get_by_text("Airflow에 요청할 수 없습니다").wait_for()  # this stack has no Airflow
    shoot(page, shots / "movie-search.png")


def test_model_page_shows_the_champion(front_door: str, page: Any, shots: Path) -> None:
    page.goto(front_door + "/model")
    page.get_by_role("heading", name="챔피언: 버전 local").wait_for()
    page.get_by_text("INT8", exact=True).or_(page.get_by_text("FP32", exact=True)).first.wait_for()
    shoot(page, shots / "model.png")


def test_the_front_door_headers_and_api_route(front_door: str, page: Any) -> None:
    response = page.request.get(front_door + "/api/health")
    assert response.status == 200 and response.json() == {"status": "ok"}
    headers = response.headers
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["x-frame-options"] == "SAMEORIGIN"
    assert "server" not in headers or "nginx/" not in headers["server"]
    root = page.request.get(front_door + "/", max_redirects=0)
    assert root.status == 200  # no redirect loop on the app's prefix


def test_api_stopped_shows_the_banner(
    tmp_path: Path, browser: Any, shots: Path, front_door: str
) -> None:
    stopped = f"http://127.0.0.1:{free_port()}"  # nothing listens there any more
    with (
        streamlit_server(stopped, tmp_path / "streamlit.log") as ui,
        nginx_server(tmp_path / "nginx", ui, stopped) as door,
    ):
        context = browser.new_context(viewport={"width": 1400, "height": 700}, locale="ko-KR")
        context.set_default_timeout(TIMEOUT_MS)
        page = context.new_page()
        page.goto(door + "/")
        page.get_by_text("API 서버에 연결할 수 없습니다").wait_for()
        assert page.get_by_label("리뷰 (한 줄에 하나)").count() == 0
        shoot(page, shots / "api-down.png")
        context.close()
