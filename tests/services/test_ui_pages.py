"""Each page of the analysis app (streamlit.testing's AppTest) against the real API on
loopback (uvicorn serving the tiny bundle over a review store crawled from the fake site
and scored): the happy path and every designed failure state."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import httpx
import pandas as pd
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from cinesense.crawl.fakesite import FakeSite
from cinesense.model.quantify import estimated_share_of
from cinesense.pipelines.crawl import list_crawl_targets
from tests.crawl_support import crawl_settings
from tests.servers import free_port
from tests.ui_stack import ROOT, api_server, populate

APP = str(ROOT / "streamlit/app.py")
ADMIN_KEY = "ui-test-admin"


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory, tiny_bundle: Path) -> Iterator[str]:
    """Crawled and scored movies; Airflow configured but not running (a closed port)."""
    home = tmp_path_factory.mktemp("ui-home")
    with FakeSite() as site:
        settings = crawl_settings(home, site.url)
        populate(settings, site.url, tiny_bundle)
        list_crawl_targets(settings, ["megabox"], max_movies=1)  # saves the now-showing list
    with api_server(
        home,
        tiny_bundle,
        home / "api.log",
        CINESENSE_AIRFLOW__BASE_URL=f"http://127.0.0.1:{free_port()}",
        CINESENSE_AIRFLOW__USERNAME="cinesense",
        CINESENSE_AIRFLOW__PASSWORD="unused",
        CINESENSE_SERVE__ADMIN_API_KEY=ADMIN_KEY,
    ) as url:
        yield url


@pytest.fixture(scope="module")
def empty_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A fresh install: nothing crawled and a model that fails to load (not ready)."""
    home = tmp_path_factory.mktemp("ui-empty")
    with api_server(home, home / "no-bundle-here", home / "api.log") as url:
        yield url


def page(url: str, monkeypatch: pytest.MonkeyPatch, name: str | None = None) -> AppTest:
    monkeypatch.setenv("CINESENSE_UI__API_URL", url)
    st.cache_data.clear()
    app = AppTest.from_file(APP, default_timeout=120)
    app.run()
    if name:
        app.switch_page(f"views/{name}.py")
        app.run()
    assert not app.exception, app.exception
    return app


def texts(elements: object) -> str:
    return " ".join(str(element.value) for element in elements)  # type: ignore[attr-defined]


def metrics(app: AppTest) -> dict[str, str]:
    return {metric.label: metric.value for metric in app.metric}


# --- 리뷰 분석 -------------------------------------------------------------------------


def test_one_typed_review_shows_label_stars_and_rating(
    api: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = page(api, monkeypatch)
    assert app.title[0].value == "리뷰 분석"
    app.text_area[0].input("배우들 연기가 정말 좋았어요 최고의 영화")
    app.button[0].click().run()
    assert not app.exception, app.exception
    card = texts(app.markdown)
    assert any(label in card for label in ("긍정", "부정", "애매")) and "/ 10" in card
    assert "★" in card or "☆" in card
    assert metrics(app)["리뷰 수"] == "1"
    assert len(app.get("download_button")) == 1


def test_many_lines_give_a_summary_keywords_and_a_table(
    api: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = page(api, monkeypatch)
    lines = ["정말 재밌어요 최고의 영화", "시간 아깝다 최악", "배우 연기가 좋았다", "", "지루했다"]
    app.text_area[0].input("\n".join(lines))
    app.button[0].click().run()
    assert not app.exception, app.exception
    assert metrics(app)["리뷰 수"] == "4"  # the blank line is not a review
    result = app.session_state["analysis"]["result"]
    probabilities = [item["probability_positive"] for item in result["items"]]
    recall = result["model_recall"]
    estimate = estimated_share_of(probabilities, (recall["negative"], recall["positive"]))
    assert estimate is not None  # the tiny bundle keeps its validation recall
    assert metrics(app)["추정 긍정 비율"] == f"{estimate * 100:.1f}%"
    assert "감성별 키워드" in texts(app.subheader)
    table = app.dataframe[-1].value
    assert len(table) == 4 and set(table["감성"]) <= {"긍정", "부정", "애매"}


def test_a_cp949_csv_with_ratings_is_read_and_scored_with_mae(
    api: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    frame = pd.DataFrame(
        {"번호": [1, 2, 3], "리뷰": ["최고의 영화", "돈 아깝다", "그냥 그랬다"], "평점": [10, 1, 6]}
    )
    app = page(api, monkeypatch)
    app.file_uploader[0].upload("엑셀저장.csv", frame.to_csv(index=False).encode("cp949"))
    app.run()
    assert "인코딩 CP949" in texts(app.caption)
    assert app.selectbox[0].value == "리뷰" and app.selectbox[1].value == "평점"
    app.button[-1].click().run()
    assert not app.exception, app.exception
    shown = metrics(app)
    assert shown["리뷰 수"] == "3" and "실제 평점과의 평균 절대 오차 (MAE)" in shown
    table = app.dataframe[-1].value
    assert list(table["실제 평점"]) == [10, 1, 6]


def test_an_excel_upload_is_read(api: str, monkeypatch: pytest.MonkeyPatch) -> None:
    buffer = io.BytesIO()
    pd.DataFrame({"text": ["재밌다", "별로다"]}).to_excel(buffer, index=False)
    app = page(api, monkeypatch)
    app.file_uploader[0].upload("reviews.xlsx", buffer.getvalue())
    app.run()
    app.button[-1].click().run()
    assert not app.exception, app.exception
    assert metrics(app)["리뷰 수"] == "2"


@pytest.mark.parametrize(
    ("name", "content", "says"),
    [
        ("broken.csv", "리뷰\n좋다\n".encode("utf-16"), "인코딩"),
        ("old.xls", b"\xd0\xcf\x11\xe0 not really", ".xls"),
        ("fake.xlsx", b"this is not a zip", "Excel 파일을 읽을 수 없습니다"),
        ("header-only.csv", "리뷰,평점\n".encode(), "데이터 행이 없습니다"),
        ("empty.csv", b"", "빈 파일"),
    ],
)
def test_bad_uploads_say_what_is_wrong(
    api: str, monkeypatch: pytest.MonkeyPatch, name: str, content: bytes, says: str
) -> None:
    app = page(api, monkeypatch)
    app.file_uploader[0].upload(name, content)
    app.run()
    assert not app.exception, app.exception
    assert says in texts(app.error)


def test_api_down_shows_the_banner_on_every_page(monkeypatch: pytest.MonkeyPatch) -> None:
    down = f"http://127.0.0.1:{free_port()}"
    for name in (None, "movie", "model"):
        app = page(down, monkeypatch, name)
        assert "API 서버에 연결할 수 없습니다" in texts(app.error)
        assert not app.text_area and not app.metric


def test_not_ready_explains_why_and_keeps_analysis_closed(
    empty_api: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = page(empty_api, monkeypatch)
    warning = texts(app.warning)
    assert "모델이 아직 준비되지 않았습니다" in warning and "no-bundle-here" in warning
    assert not app.text_area


# --- 영화 분석 -------------------------------------------------------------------------


def test_movie_page_shows_a_scored_movie(api: str, monkeypatch: pytest.MonkeyPatch) -> None:
    app = page(api, monkeypatch, "movie")
    assert app.header[0].value == "푸른 항구의 여름"  # the title, stored by the crawl
    shown = metrics(app)
    assert shown["리뷰 수"] == shown["분석된 리뷰"] != "0"
    assert shown["평균 AI 평점"] != "—" and shown["사이트 평점"] != "—"
    listed = httpx.get(api + "/v1/movies").json()["movies"]
    movie = next(m for m in listed if m["title"] == "푸른 항구의 여름")
    assert movie["estimated_share_positive"] is not None
    assert shown["긍정 비율"] == f"{movie['estimated_share_positive'] * 100:.1f}%"
    share = next(m for m in app.metric if m.label == "긍정 비율")
    assert f"긍정으로 분류된 리뷰는 {movie['share_positive'] * 100:.1f}%" in share.help
    headings = texts(app.subheader)
    assert "날짜별 긍정·부정 비율" in headings and "평점 분포" in headings
    assert "가장 긍정적인 리뷰" in texts(app.markdown)
    assert len(app.dataframe[-1].value) > 0


def test_movie_not_scored_yet_says_so(api: str, monkeypatch: pytest.MonkeyPatch) -> None:
    app = page(api, monkeypatch, "movie")
    pick = app.selectbox(key="movie_pick")
    index = next(i for i, option in enumerate(pick.options) if "지난 겨울의 노래" in option)
    pick.select_index(index).run()
    assert not app.exception, app.exception
    assert app.header[0].value == "지난 겨울의 노래"
    assert "아직 모델이 점수를 매기지 않았습니다" in texts(app.info)


def test_fetch_latest_reviews_when_airflow_is_down(
    api: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = page(api, monkeypatch, "movie")
    next(b for b in app.button if "최신 리뷰 가져오기" in b.label).click().run()
    assert not app.exception, app.exception
    error = texts(app.error)
    assert "Airflow에 요청할 수 없습니다" in error and "cannot be reached" in error


def test_now_showing_search_finds_a_movie_and_asks_airflow_for_it(
    api: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = page(api, monkeypatch, "movie")
    app.text_input(key="showing_query").input("항구").run()
    assert not app.exception, app.exception
    assert "상영작 목록 기준 시각" in texts(app.caption)
    pick = app.selectbox(key="showing_pick")
    assert [option.split(" · ")[0] for option in pick.options] == ["푸른 항구의 여름"]
    app.text_input(key="showing_query").input("없는 영화 제목").run()
    assert "검색 결과가 없습니다" in texts(app.warning)
    app.text_input(key="showing_query").input("").run()
    app.button(key="showing_crawl").click().run()
    assert "Airflow에 요청할 수 없습니다" in texts(app.error)


def test_no_crawled_movies_says_how_to_crawl(
    empty_api: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = page(empty_api, monkeypatch, "movie")
    info = texts(app.info)
    assert "아직 수집된 영화가 없습니다" in info and "crawl_reviews" in info
    assert "상영작 목록이 아직 없습니다" in info


# --- 모델 ----------------------------------------------------------------------------


def test_model_page_shows_the_champion(api: str, monkeypatch: pytest.MonkeyPatch) -> None:
    app = page(api, monkeypatch, "model")
    assert app.subheader[0].value == "챔피언: 버전 local"
    shown = metrics(app)
    assert shown["형식"] in ("INT8", "FP32") and shown["테스트 정확도"].endswith("%")


def test_retraining_needs_the_admin_key_then_airflow(
    api: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = page(api, monkeypatch, "model")
    app.text_input[0].input("wrong-key")
    app.button[-1].click().run()
    assert "허용되지 않은 작업입니다" in texts(app.error)
    app.text_input[0].input(ADMIN_KEY)
    app.button[-1].click().run()
    assert not app.exception, app.exception
    assert "Airflow에 요청할 수 없습니다" in texts(app.error)


def test_no_champion_yet(empty_api: str, monkeypatch: pytest.MonkeyPatch) -> None:
    app = page(empty_api, monkeypatch, "model")
    assert "아직 챔피언 모델이 없습니다" in texts(app.warning)
