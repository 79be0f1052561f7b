"""영화 분석: 수집한 영화의 감성 추이, 평점 분포, 키워드, 대표 리뷰, 최신 리뷰 가져오기."""

import pandas as pd
import streamlit as st

from cinesense import webui
from cinesense.client import ApiError

SOURCES = {"megabox": "메가박스", "cgv": "CGV"}

st.title("영화 분석")
webui.banner(needs_model=False)
settings = webui.options()


def request_crawl(source: str, movie_id: str, title: str) -> None:
    """Ask Airflow (through the API) to crawl one movie; the status below follows the run."""
    try:
        with webui.client() as api:
            started = api.crawl(source, movie_id, title)
    except ApiError as error:
        if error.status in (403, 401):
            st.error(f"**수집을 요청할 권한이 없습니다.** {error.message}")
        elif error.status in (0, 502, 503):
            st.error(f"**Airflow에 요청할 수 없습니다.** {error.message}")
        else:
            webui.show_api_error(error, "수집 요청")
    else:
        st.session_state["crawl_run"] = {"run_id": started["run_id"], "title": title or movie_id}


@st.fragment(run_every=3)
def crawl_status() -> None:
    run = st.session_state.get("crawl_run")
    if not run:
        return
    try:
        with webui.client() as api:
            state = api.job("crawl", run["run_id"])
    except ApiError as error:
        webui.show_api_error(error, "수집 상태 확인")
        return
    if state["done"]:
        st.session_state.pop("crawl_run")
        webui.cached.clear()
        st.session_state["crawl_outcome"] = (
            ("success", f"「{run['title']}」의 최신 리뷰를 가져왔습니다.")
            if state["state"] == "success"
            else (
                "error",
                f"「{run['title']}」 수집 실행이 실패했습니다 ({state['state']}). "
                "Airflow에서 로그를 확인하세요.",
            )
        )
        st.rerun()
    st.info(
        f"「{run['title']}」 Airflow 수집 실행 `{run['run_id']}`: **{state['state']}** "
        "… 3초마다 확인합니다."
    )


def now_showing_search() -> None:
    """Search the sites' now-showing lists (as the last crawl read them) and crawl a pick."""
    query = st.text_input(
        "상영작 제목", key="showing_query", placeholder="상영 중인 영화 제목 일부를 입력하세요"
    )
    try:
        found = webui.cached(settings.api_url, "now_showing", query.strip())
    except ApiError as error:
        webui.show_api_error(error, "상영작 검색")
        return
    if not found["fetched_at"]:
        st.info(
            "상영작 목록이 아직 없습니다. Airflow의 `crawl_reviews` DAG가 사이트의 상영작 "
            "목록을 읽을 때 저장합니다 (정해진 시각에 자동으로, 또는 Airflow에서 직접 실행)."
        )
        return
    read_at = ", ".join(
        f"{SOURCES.get(source, source)} {pd.Timestamp(at).tz_convert('Asia/Seoul'):%m-%d %H:%M}"
        for source, at in found["fetched_at"].items()
    )
    st.caption(f"상영작 목록 기준 시각 (KST): {read_at}")
    if not found["movies"]:
        st.warning("검색 결과가 없습니다.")
        return
    table = pd.DataFrame(found["movies"])
    st.dataframe(
        table.assign(사이트=table["source"].map(SOURCES)).rename(
            columns={
                "title": "제목",
                "release_date": "개봉일",
                "rank": "예매 순위",
                "crawled_reviews": "수집된 리뷰",
            }
        )[["제목", "사이트", "개봉일", "예매 순위", "수집된 리뷰"]],
        hide_index=True,
    )
    pick = st.selectbox(
        "리뷰를 가져올 영화",
        found["movies"],
        format_func=lambda m: f"{m['title']} · {SOURCES[m['source']]}",
        key="showing_pick",
    )
    if st.button("이 영화 리뷰 가져오기", icon=":material/download:", key="showing_crawl"):
        request_crawl(pick["source"], pick["movie_id"], pick["title"])


try:
    movies = webui.cached(settings.api_url, "movies")
except ApiError as error:
    webui.show_api_error(error, "영화 목록 읽기")
    st.stop()

if outcome := st.session_state.pop("crawl_outcome", None):
    kind, message = outcome
    (st.success if kind == "success" else st.error)(message)
with st.expander(
    "상영작 검색 · 새 영화 리뷰 가져오기", expanded=not movies, icon=":material/search:"
):
    now_showing_search()
crawl_status()

if not movies:
    st.info(
        "**아직 수집된 영화가 없습니다.** 위에서 상영작을 찾아 리뷰를 가져오거나, Airflow에서 "
        "`crawl_reviews` DAG를 실행하세요 (서버에서는 `cinesense crawl now-showing --source "
        "megabox --crawl`). 수집이 끝나면 `score_reviews`가 점수를 매깁니다.",
        icon=":material/inbox:",
    )
    st.stop()

left, middle = st.columns([1, 3])
source = left.selectbox(
    "사이트", ["전체", *SOURCES], format_func=lambda s: SOURCES.get(s, s), key="movie_source"
)
query = middle.text_input("영화 제목 검색", placeholder="제목 일부를 입력하세요", key="movie_query")
chosen = sorted(
    (
        m
        for m in movies
        if (source == "전체" or m["source"] == source) and query.strip() in (m["title"] or "")
    ),
    key=lambda m: (-m["scored_reviews"], -m["reviews"]),
)
if not chosen:
    st.warning("조건에 맞는 영화가 없습니다.")
    st.stop()


def name(movie: dict) -> str:
    title = movie["title"] or f"(제목 없음) {movie['movie_id']}"
    return f"{title} · {SOURCES[movie['source']]} · 리뷰 {movie['reviews']:,}개"


movie = st.selectbox("영화", chosen, format_func=name, key="movie_pick")
key = (movie["source"], movie["movie_id"])

try:
    detail = webui.cached(settings.api_url, "movie", *key, 1, 50, "newest")
except ApiError as error:
    webui.show_api_error(error, "영화 정보 읽기")
    st.stop()
info = detail["movie"]

st.header(info["title"] or info["movie_id"])
cols = st.columns(5)
cols[0].metric("리뷰 수", f"{info['reviews']:,}", help="수집한 리뷰")
cols[1].metric("분석된 리뷰", f"{info['scored_reviews']:,}")
cols[2].metric(
    "긍정 비율",
    webui.percent(webui.positive_share(info)),
    help=webui.positive_share_help(info),
)
ai = info["mean_predicted_rating"]
site = info["mean_real_rating"]
cols[3].metric("평균 AI 평점", "—" if ai is None else f"{ai:.2f}")
cols[4].metric("사이트 평점", "—" if site is None else f"{site:.2f}")
last = (
    pd.Timestamp(info["last_crawled_at"]).tz_convert("Asia/Seoul")
    if info["last_crawled_at"]
    else None
)
st.caption(f"마지막 수집: {last:%Y-%m-%d %H:%M} (KST)" if last is not None else "수집 시각 없음")

if st.button(
    "최신 리뷰 가져오기",
    icon=":material/refresh:",
    help="Airflow에 이 영화의 리뷰 수집(crawl_reviews)을 요청합니다",
):
    request_crawl(movie["source"], movie["movie_id"], movie["title"] or "")

if not info["scored_reviews"]:
    st.info(
        "이 영화의 리뷰는 아직 모델이 점수를 매기지 않았습니다. `score_reviews` DAG가 수집 뒤에 "
        "자동으로 실행됩니다."
    )
else:
    timeline = pd.DataFrame(detail["timeline"])
    if len(timeline):
        st.subheader("날짜별 긍정·부정 비율")
        timeline = timeline.set_index("date")
        total = timeline.sum(axis=1).where(lambda s: s > 0)
        shares = pd.DataFrame(
            {"긍정": timeline["positive"] / total, "부정": timeline["negative"] / total}
        )
        st.line_chart(shares, color=["#2e7d32", "#c62828"], x_label="리뷰 날짜", y_label="비율")
    left, right = st.columns(2)
    with left:
        st.subheader("평점 분포")
        histogram = pd.DataFrame(
            {"AI 평점": [detail["predicted_rating_histogram"][str(r)] for r in range(1, 11)]},
            index=range(1, 11),
        )
        if detail["real_rating_histogram"]:
            histogram["사이트 평점"] = [
                detail["real_rating_histogram"][str(r)] for r in range(1, 11)
            ]
        st.bar_chart(histogram, stack=False, x_label="평점", y_label="리뷰 수")
    with right:
        st.subheader("감성별 키워드")
        for label, title in (("positive", "긍정"), ("negative", "부정")):
            st.markdown(f"**{title}**")
            webui.keyword_chart(detail["keywords"].get(label, []), label)

    def quotes(items: list[dict], title: str) -> None:
        st.markdown(f"**{title}**")
        for item in items:
            st.markdown(
                f"> {item['text']}  \n{webui.stars(item['predicted_rating'])} "
                f"AI {item['predicted_rating']:.1f}점"
            )

    left, right = st.columns(2)
    with left:
        quotes(detail["most_positive"], "가장 긍정적인 리뷰")
    with right:
        quotes(detail["most_negative"], "가장 부정적인 리뷰")

st.subheader("최근 리뷰")
rows = pd.DataFrame(detail["reviews"])
if len(rows):
    rows = rows.assign(
        감성=rows["label"].map(lambda v: webui.LABELS_KO.get(v, "미분석") if v else "미분석"),
        날짜=pd.to_datetime(rows["created_at"], utc=True)
        .dt.tz_convert("Asia/Seoul")
        .dt.strftime("%Y-%m-%d"),
    ).rename(columns={"text": "리뷰", "predicted_rating": "AI 평점", "real_rating": "사이트 평점"})
    st.dataframe(
        rows[["날짜", "리뷰", "감성", "AI 평점", "사이트 평점"]],
        hide_index=True,
        column_config={"AI 평점": st.column_config.NumberColumn(format="%.1f")},
    )
    st.caption(f"최근 {len(rows)}개 / 전체 {detail['total']:,}개")
